#include "config.hpp"
#include "protocol/protocol.hpp"


#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace rt {

namespace {

bool parse_uint(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

bool parse_seconds(const std::string& s, double min, double max, double* out) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || c == '.')) return false;
  errno = 0;
  char* end = nullptr;
  double v = strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v) || v < min || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

bool parse_listen(const std::string& text, std::string* host, int* port, std::string* error) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    *error = "--listen: expected HOST:PORT, got '" + text + "'";
    return false;
  }
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  uint64_t p = 0;
  if (!parse_uint(text.substr(colon + 1), 65535, &p)) {
    *error = "--listen: bad port in '" + text + "'";
    return false;
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = int(p);
  return true;
}

std::string redact_redis_url(const std::string& url) {
  std::string out = url;
  size_t scheme = out.find("://");
  size_t query = out.find('?');
  size_t at = out.rfind('@', query == std::string::npos ? std::string::npos : query);
  if (scheme != std::string::npos && at != std::string::npos && at > scheme)
    out = out.substr(0, scheme + 3) + "***@" + out.substr(at + 1);
  const std::string secret = "sentinel_password=";
  for (size_t p = out.find(secret); p != std::string::npos; p = out.find(secret, p + 1)) {
    if (p == 0 || (out[p - 1] != '?' && out[p - 1] != '&')) continue;
    size_t v = p + secret.size(), e = out.find('&', v);
    out.replace(v, (e == std::string::npos ? out.size() : e) - v, "***");
  }
  return out;
}

namespace {

// "host[:port]" or "[v6][:port]" (port `default_port` when absent). `what` names the part
// for errors.
bool parse_host_port(const std::string& text, int default_port, const std::string& url, HostPort* out,
                     std::string* error) {
  std::string host = text, port_text;
  bool has_port = false;
  uint64_t port = uint64_t(default_port);
  if (!text.empty() && text[0] == '[') {  // [v6]:port
    size_t close = text.find(']');
    if (close == std::string::npos) {
      *error = "--redis: unclosed '[' in '" + url + "'";
      return false;
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        *error = "--redis: bad host in '" + url + "'";
        return false;
      }
      port_text = text.substr(close + 2);
      has_port = true;
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon != std::string::npos) {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port && (!parse_uint(port_text, 65535, &port) || port == 0)) {
    *error = "--redis: bad port in '" + url + "'";
    return false;
  }
  if (host.empty()) {
    *error = "--redis: missing host in '" + url + "'";
    return false;
  }
  out->host = host;
  out->port = int(port);
  return true;
}

// "[user]:password" (percent-encoded) into *user, *password.
bool parse_userinfo(const std::string& userinfo, std::string* user, std::string* password) {
  size_t colon = userinfo.find(':');
  return colon != std::string::npos && proto::percent_decode(userinfo.substr(0, colon), false, user) &&
         proto::percent_decode(userinfo.substr(colon + 1), false, password) && !password->empty();
}

bool parse_db(const std::string& db, int* out, std::string* error) {
  uint64_t d = 0;
  if (!db.empty() && !parse_uint(db, 1 << 20, &d)) {
    *error = "--redis: bad database number '" + db + "'";
    return false;
  }
  *out = int(d);
  return true;
}

// "h:p,h:p..." into *out (at most `max`, default port `default_port`).
bool parse_host_list(const std::string& hosts, int default_port, size_t max, const char* what, const std::string& url,
                     std::vector<HostPort>* out, std::string* error) {
  size_t pos = 0;
  for (;;) {
    size_t comma = hosts.find(',', pos);
    std::string one = hosts.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    HostPort hp;
    if (!parse_host_port(one, default_port, url, &hp, error)) return false;
    if (out->size() >= max) {
      *error = "--redis: at most " + std::to_string(max) + " " + what;
      return false;
    }
    out->push_back(hp);
    if (comma == std::string::npos) return true;
    pos = comma + 1;
  }
}

// redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTERNAME[?db=N
// &sentinel_user=U&sentinel_password=P]
bool parse_sentinel_url(const std::string& url, const std::string& rest_in, RedisAddress* a, std::string* error) {
  std::string rest = rest_in, query;
  size_t q = rest.find('?');
  if (q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 >= rest.size()) {
    *error = "--redis: redis+sentinel:// URL needs /MASTERNAME after the sentinels, got '" + redact_redis_url(url) + "'";
    return false;
  }
  std::string hosts = rest.substr(0, slash);
  if (!proto::percent_decode(rest.substr(slash + 1), false, &a->master_name) || a->master_name.empty() ||
      a->master_name.size() > 256 || a->master_name.find('/') != std::string::npos) {
    *error = "--redis: bad master name in '" + redact_redis_url(url) + "'";
    return false;
  }
  for (char c : a->master_name)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      *error = "--redis: the master name must not hold spaces or control characters";
      return false;
    }
  size_t at = hosts.rfind('@');
  if (at != std::string::npos) {
    if (!parse_userinfo(hosts.substr(0, at), &a->user, &a->password)) {
      *error = "--redis: credentials must be redis+sentinel://[user]:password@host...";
      return false;
    }
    hosts = hosts.substr(at + 1);
  }
  a->sentinel_user = a->user;
  a->sentinel_password = a->password;
  if (!parse_host_list(hosts, 26379, kMaxSentinels, "sentinels", url, &a->sentinels, error)) return false;
  size_t pos = 0;
  bool have_db = false, have_user = false, have_password = false;
  pos = 0;
  while (!query.empty() && pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    pos = amp == std::string::npos ? query.size() + 1 : amp + 1;
    size_t eq = part.find('=');
    std::string name = part.substr(0, eq), value;
    if (eq == std::string::npos || !proto::percent_decode(part.substr(eq + 1), false, &value)) {
      *error = "--redis: bad query parameter '" + name + "' (expected name=value)";
      return false;
    }
    bool* seen = name == "db" ? &have_db : name == "sentinel_user" ? &have_user
               : name == "sentinel_password" ? &have_password : nullptr;
    if (seen == nullptr) {
      *error = "--redis: unknown query parameter '" + name + "' (db, sentinel_user, sentinel_password)";
      return false;
    }
    if (*seen) {
      *error = "--redis: query parameter '" + name + "' given twice";
      return false;
    }
    *seen = true;
    if (name == "db") {
      if (value.empty() || !parse_db(value, &a->db, error)) {
        if (value.empty()) *error = "--redis: bad database number ''";
        return false;
      }
    } else if (name == "sentinel_user") {
      a->sentinel_user = value;
    } else {
      a->sentinel_password = value;  // empty: the sentinels take no AUTH
    }
  }
  if (a->sentinel_password.empty()) a->sentinel_user.clear();
  a->host.clear();
  a->port = 0;
  return true;
}

// redis+cluster://[[user]:password@]host[:port][,host[:port]...]
bool parse_cluster_url(const std::string& url, const std::string& rest_in, RedisAddress* a, std::string* error) {
  std::string hosts = rest_in;
  if (!hosts.empty() && hosts.back() == '/') hosts.pop_back();
  if (hosts.find_first_of("/?") != std::string::npos) {
    *error = "--redis: a redis+cluster:// URL holds only the seed nodes (a cluster has database 0 only), got '" +
             redact_redis_url(url) + "'";
    return false;
  }
  size_t at = hosts.rfind('@');
  if (at != std::string::npos) {
    if (!parse_userinfo(hosts.substr(0, at), &a->user, &a->password)) {
      *error = "--redis: credentials must be redis+cluster://[user]:password@host...";
      return false;
    }
    hosts = hosts.substr(at + 1);
  }
  if (!parse_host_list(hosts, 6379, kMaxClusterSeeds, "cluster seed nodes", url, &a->cluster_seeds, error))
    return false;
  a->host.clear();
  a->port = 0;
  return true;
}

}  // namespace

bool parse_redis_url(const std::string& url, RedisAddress* out, std::string* error) {
  RedisAddress a;
  const std::string unix_scheme = "unix://", redis_scheme = "redis://", sentinel_scheme = "redis+sentinel://",
                    cluster_scheme = "redis+cluster://";
  if (url.compare(0, unix_scheme.size(), unix_scheme) == 0) {
    a.unix_socket = true;
    a.path = url.substr(unix_scheme.size());
    if (a.path.empty() || a.path[0] != '/') {
      *error = "--redis: unix URL needs an absolute path (unix:///path/to/redis.sock)";
      return false;
    }
    *out = a;
    return true;
  }
  if (url.compare(0, sentinel_scheme.size(), sentinel_scheme) == 0) {
    if (!parse_sentinel_url(url, url.substr(sentinel_scheme.size()), &a, error)) return false;
    *out = a;
    return true;
  }
  if (url.compare(0, cluster_scheme.size(), cluster_scheme) == 0) {
    if (!parse_cluster_url(url, url.substr(cluster_scheme.size()), &a, error)) return false;
    *out = a;
    return true;
  }
  if (url.compare(0, redis_scheme.size(), redis_scheme) != 0) {
    *error = "--redis: expected redis://host:port[/db], redis+sentinel://host:port[,...]/MASTER, "
             "redis+cluster://host:port[,...] or unix:///path, got '" +
             redact_redis_url(url) + "'";
    return false;
  }
  std::string rest = url.substr(redis_scheme.size());
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos && !parse_db(rest.substr(slash + 1), &a.db, error)) return false;
  size_t at = hostport.rfind('@');
  if (at != std::string::npos) {  // [user]:password@  (percent-encoded)
    if (!parse_userinfo(hostport.substr(0, at), &a.user, &a.password)) {
      *error = "--redis: credentials must be redis://[user]:password@host...";
      return false;
    }
    hostport = hostport.substr(at + 1);
  }
  HostPort hp;
  if (!parse_host_port(hostport, 6379, url, &hp, error)) return false;
  a.host = hp.host;
  a.port = hp.port;
  *out = a;
  return true;
}

ParseResult parse_args(int argc, const char* const* argv, Config* out, std::string* error) {
  Config& c = *out;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return ParseResult::help;
    if (arg.compare(0, 2, "--") != 0) {
      *error = "unexpected argument '" + arg + "' (see --help)";
      return ParseResult::error;
    }
    std::string name = arg, value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto need_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) {
        *error = name + ": missing value";
        return false;
      }
      value = argv[++i];
      has_value = true;
      return true;
    };
    auto bad = [&](const std::string& what) {
      *error = name + ": " + what + ", got '" + value + "'";
      return ParseResult::error;
    };
    uint64_t u = 0;
    double d = 0;
    if (name == "--listen") {
      if (!need_value()) return ParseResult::error;
      if (!parse_listen(value, &c.listen_host, &c.listen_port, error)) return ParseResult::error;
    } else if (name == "--redis") {
      if (!need_value()) return ParseResult::error;
      if (!parse_redis_url(value, &c.redis, error)) return ParseResult::error;
      c.redis_url = redact_redis_url(value);
    } else if (name == "--publish-token-file") {
      if (!need_value()) return ParseResult::error;
      if (value.empty()) return bad("expected a file path");
      c.publish_token_file = value;
    } else if (name == "--poll-timeout") {
      if (!need_value()) return ParseResult::error;
      if (!parse_seconds(value, 0.001, 3600, &d)) return bad("expected seconds in 0.001..3600");
      c.poll_timeout_s = d;
    } else if (name == "--backlog") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 10000, &u) || u < 1) return bad("expected an integer in 1..10000");
      c.backlog = uint32_t(u);
    } else if (name == "--ttl") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, uint64_t(1) << 31, &u)) return bad("expected whole seconds (0 = never)");
      c.ttl_s = u;
    } else if (name == "--max-channels") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 100000, &u) || u < 1) return bad("expected an integer in 1..100000");
      c.max_channels = size_t(u);
    } else if (name == "--max-url") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 16 << 20, &u) || u < 64) return bad("expected bytes in 64..16777216");
      c.max_url = size_t(u);
    } else if (name == "--max-body") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 64 << 20, &u) || u < 1) return bad("expected bytes in 1..67108864");
      c.max_body = size_t(u);
    } else if (name == "--web") {
      if (!need_value()) return ParseResult::error;
      if (value.empty()) return bad("expected a directory");
      c.web_dir = value;
    } else if (name == "--max-held") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 10000000, &u) || u < 1) return bad("expected an integer in 1..10000000");
      c.max_held = size_t(u);
    } else if (name == "--max-connections") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 10000000, &u)) return bad("expected an integer in 0..10000000 (0: auto)");
      c.max_connections = size_t(u);
    } else if (name == "--key-prefix") {
      if (!need_value()) return ParseResult::error;
      if (value.size() > 256) return bad("expected at most 256 bytes");
      c.key_prefix = value;
    } else if (name == "--cors-origin") {
      if (!need_value()) return ParseResult::error;
      for (char ch : value)
        if (static_cast<unsigned char>(ch) < ' ' || ch == 0x7f) return bad("expected an origin without control characters");
      c.cors_origin = value;
    } else if (name == "--cors-credentials") {
      if (has_value) return bad("takes no value");
      c.cors_credentials = true;
    } else if (name == "--log-level") {
      if (!need_value()) return ParseResult::error;
      if (!log::parse_level(value, &c.log_level)) return bad("expected debug, info, warn or error");
    } else if (name == "--threads") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 256, &u) || u < 1) return bad("expected an integer in 1..256");
      c.threads = int(u);
    } else if (name == "--idle-timeout") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 86400, &u) || u < 1) return bad("expected whole seconds in 1..86400");
      c.idle_timeout_s = uint32_t(u);
    } else if (name == "--request-timeout") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 3600, &u) || u < 1) return bad("expected whole seconds in 1..3600");
      c.request_timeout_s = uint32_t(u);
    } else if (name == "--reuseport") {
      if (has_value) return bad("takes no value");
      c.reuseport = true;
    } else if (name == "--lua-dir") {
      if (!need_value()) return ParseResult::error;
      if (value.empty()) return bad("expected a directory");
      c.lua_dir = value;
    } else if (name == "--publish-min-replicas") {
      if (!need_value()) return ParseResult::error;
      if (!parse_uint(value, 100, &u)) return bad("expected an integer in 0..100");
      c.publish_min_replicas = uint32_t(u);
    } else if (name == "--redis-timeout") {
      if (!need_value()) return ParseResult::error;
      if (!parse_seconds(value, 0.01, 600, &d)) return bad("expected seconds in 0.01..600");
      c.redis_timeout_s = d;
    } else {
      *error = "unknown flag '" + name + "' (see --help)";
      return ParseResult::error;
    }
  }
  if (c.redis.via_cluster() && c.publish_min_replicas > 0) {
    *error = "--publish-min-replicas: not supported with a redis+cluster:// Redis (yet)";
    return ParseResult::error;
  }
  // Browsers refuse credentialed answers with a wildcard origin: say so at start-up rather
  // than send headers no page can use.
  if (c.cors_credentials && (c.cors_origin.empty() || c.cors_origin == "*")) {
    *error = "--cors-credentials: needs --cors-origin with an explicit origin (never '*')";
    return ParseResult::error;
  }
  return ParseResult::ok;
}

bool read_token_file(const std::string& path, std::string* token, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "--publish-token-file: cannot read '" + path + "'";
    return false;
  }
  std::string line;
  std::getline(in, line);
  size_t b = line.find_first_not_of(" \t\r\n");
  size_t e = line.find_last_not_of(" \t\r\n");
  line = b == std::string::npos ? "" : line.substr(b, e - b + 1);
  if (line.empty()) {
    *error = "--publish-token-file: '" + path + "' holds no token";
    return false;
  }
  *token = std::move(line);
  return true;
}

bool load_publish_token(Config* cfg, std::string* error) {
  if (cfg->publish_token_file.empty()) {
    const char* env = getenv("RT_PUBLISH_TOKEN");
    cfg->publish_token = env ? env : "";
    return true;
  }
  return read_token_file(cfg->publish_token_file, &cfg->publish_token, error);
}

size_t resolve_max_connections(size_t configured, uint64_t nofile, int threads) {
  if (configured > 0) return configured;
  uint64_t reserve = 64 + 16 * uint64_t(threads > 0 ? threads : 1);
  if (reserve > nofile / 2) reserve = nofile / 2;
  uint64_t n = nofile - reserve;
  return n > 0 ? size_t(n > 10000000 ? 10000000 : n) : 1;
}

size_t connection_share(size_t total, int threads, int index) {
  size_t t = size_t(threads > 0 ? threads : 1);
  size_t share = total / t + (size_t(index) < total % t ? 1 : 0);
  return share > 0 ? share : 1;
}

std::string usage() {
  return R"(Usage: rt-server [flags]

Reliable real-time updates over HTTP long polls, backed by Redis.

  --listen HOST:PORT          address to listen on (default 127.0.0.1:8080)
  --redis URL                 redis://[[user]:password@]host:port[/db] or unix:///path
                              (default redis://127.0.0.1:6379), or through Sentinel:
                              redis+sentinel://[[user]:password@]host:port[,host:port...]/MASTERNAME[?db=N]
                              (sentinel port 26379 by default; the credentials are used on
                              the master and the sentinels; ?sentinel_user=U&sentinel_password=P
                              gives the sentinels their own, an empty sentinel_password none):
                              the sentinels are asked for the master in turn, +switch-master
                              is followed, a server that is not the master (ROLE) is dropped;
                              or a Redis Cluster (Redis >= 7.0):
                              redis+cluster://[[user]:password@]host:port[,host:port...]
                              (port 6379 by default; any seed node will do): the slot map
                              comes from CLUSTER SHARDS and is followed (MOVED, ASK,
                              failovers); each worker keeps one command connection and one
                              sharded pub/sub (SSUBSCRIBE) connection per master, and
                              publishes with SPUBLISH
  --publish-token-file PATH   file holding the bearer token of POST /publish (else env
                              RT_PUBLISH_TOKEN; without a token POST /publish answers 403);
                              re-read on SIGHUP (token rotation without a restart)
  --poll-timeout SECONDS      long-poll timeout, fractions allowed (default 25)
  --backlog N                 default backlog length of POST /publish, 1..10000 (default 100)
  --ttl SECONDS               expiry of idle channels' keys, 0 = never (default 604800 = 7 days)
  --max-channels N            channels per /rt request (default 500)
  --max-url BYTES             longest request URL, longer answers 414 (default 65536);
                              a request head may be max(URL + 16 KiB, 64 KiB), more: 400
                              (evhttp's own answer)
  --max-body BYTES            largest request body (POST /publish), larger answers 413
                              (evhttp's own answer, after reading and dropping the body) and
                              the connection closes (default 65536)
  --max-held N                open /rt requests (all threads); beyond it /rt answers 503 (default 10000)
  --max-connections N         open client connections (all threads, split evenly between them;
                              held polls count). At the bound accepting pauses: newcomers wait
                              in the kernel's listen queue (backlog 4096) until a connection
                              closes, and while some wait, connections idle between requests
                              or reading one request for over 1 s are closed to make room.
                              0 = auto: the file limit (ulimit -n) less 64 + 16 per thread
                              (default 0)
  --web DIR                   serve static files from DIR (GET only)
  --key-prefix PREFIX         Redis key prefix (default "channel:")
  --cors-origin ORIGIN        send Access-Control-Allow-Origin: ORIGIN on /rt, /publish, /healthz
                              (with Access-Control-Expose-Headers: Retry-After)
  --cors-credentials          also send Access-Control-Allow-Credentials: true, so that pages
                              of ORIGIN may poll with cookies (credentials: 'include');
                              needs an explicit --cors-origin, never '*'
  --log-level LEVEL           debug, info, warn or error (default info)
  --threads N                 worker threads, each with its own event loop and Redis
                              connections (default 1)
  --idle-timeout SECONDS      close keep-alive connections idle this long between requests
                              (default: the poll timeout + 60)
  --request-timeout SECONDS   close connections whose request head/body is not complete this
                              long after its first byte (a new connection's first request:
                              after the accept), or that do not read their answer this long
                              (default 30)
  --reuseport                 SO_REUSEPORT: each worker thread gets its own listening
                              socket, and several rt-server processes may listen on the
                              same HOST:PORT (the kernel spreads connections over them)
  --lua-dir DIR               directory of publish.lua and read.lua (default: found next to
                              the binary or in server/lua of the working directory)
  --redis-timeout SECONDS     Redis connect/command timeout (default 2)
  --publish-min-replicas N    POST /publish answers 200 only once WAIT confirms that N replicas
                              have the message (waiting at most half of --redis-timeout);
                              otherwise 503 {"error":"stored on the master, not confirmed on
                              N replicas ...","id":ID} (default 0: no wait)
  --help                      this text
)";
}

}  // namespace rt
