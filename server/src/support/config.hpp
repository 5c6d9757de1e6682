// rt-server's command line: the flags are the public interface (see usage()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "log.hpp"

namespace rt {

struct HostPort {
  std::string host;
  int port = 0;
};

struct RedisAddress {
  bool unix_socket = false;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path;  // unix socket path
  int db = 0;
  std::string user;      // AUTH user (Redis 6 ACL); empty: AUTH with the password only
  std::string password;  // empty: no AUTH
  // redis+sentinel://: the master is whatever these sentinels name `master_name`; host and
  // port above are filled in when they do (and again after each failover).
  std::vector<HostPort> sentinels;  // empty: host/port (or path) is the address
  std::string master_name;
  std::string sentinel_user, sentinel_password;  // AUTH on the sentinels (empty password: none)
  bool via_sentinel() const noexcept { return !sentinels.empty(); }
  // redis+cluster://: a Redis Cluster; these seed nodes are asked for the slot map (any
  // one of them will do), the masters are whatever the map names. The credentials are
  // used on every node; the database is always 0.
  std::vector<HostPort> cluster_seeds;
  bool via_cluster() const noexcept { return !cluster_seeds.empty(); }
};

struct Config {
  std::string listen_host = "127.0.0.1";
  int listen_port = 8080;
  RedisAddress redis;
  std::string redis_url = "redis://127.0.0.1:6379";  // for logs: credentials redacted
  std::string publish_token_file;  // empty: RT_PUBLISH_TOKEN from the environment, if set
  std::string publish_token;       // filled by load_publish_token(); empty: publishing refused
  double poll_timeout_s = 25.0;
  uint32_t backlog = 100;          // default backlog length of POST /publish
  uint64_t ttl_s = 7 * 24 * 3600;  // idle channel expiry; 0 = never
  size_t max_channels = 500;
  size_t max_url = 65536;
  size_t max_body = 65536;
  std::string web_dir;             // empty: no static files
  size_t max_held = 10000;         // open /rt requests (all workers) beyond which /rt answers 503
  size_t max_connections = 0;      // open client connections (all workers); 0: auto (see
                                   // resolve_max_connections)
  std::string key_prefix = "channel:";
  std::string cors_origin;         // empty: no Access-Control-Allow-Origin header
  bool cors_credentials = false;   // Access-Control-Allow-Credentials: true (needs an explicit origin)
  log::Level log_level = log::Level::info;
  int threads = 1;
  uint32_t idle_timeout_s = 0;     // keep-alive connection idle between requests; 0: poll timeout + 60 s
  uint32_t request_timeout_s = 30; // a request head/body that stalled, an answer the client does not read
  bool reuseport = false;          // SO_REUSEPORT: one listening socket per worker; several
                                   // rt-server processes may share the port
  std::string lua_dir;             // empty: found relative to the binary / working directory
  double redis_timeout_s = 2.0;    // command / connect timeout of the Redis connections
  uint32_t publish_min_replicas = 0;  // POST /publish answers 200 only once WAIT confirms this many
};

enum class ParseResult { ok, help, error };

// Parses argv (argv[0] is the program name). Accepts "--flag value" and "--flag=value".
// On error returns ParseResult::error with *error a sentence naming the flag; *out may be
// partly filled. --help returns ParseResult::help (print usage()).
ParseResult parse_args(int argc, const char* const* argv, Config* out, std::string* error);

// Parses "redis://[[user]:password@]host[:port][/db]" (port 6379 by default; credentials
// percent-encoded), "unix:///path", or
// "redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTERNAME[?db=N]"
// (sentinel port 26379 by default; the credentials are used on the data nodes and, unless
// the query gives sentinel_user / sentinel_password, on the sentinels too), or
// "redis+cluster://[[user]:password@]host[:port][,host[:port]...]" (port 6379 by default).
bool parse_redis_url(const std::string& url, RedisAddress* out, std::string* error);

// The URL with its credentials (user info, sentinel_password) replaced by "***" (for logs).
std::string redact_redis_url(const std::string& url);

// At most this many sentinels in one redis+sentinel:// URL.
constexpr size_t kMaxSentinels = 16;
// At most this many seed nodes in one redis+cluster:// URL.
constexpr size_t kMaxClusterSeeds = 16;

// Parses "HOST:PORT" (HOST may be empty for all interfaces, or [v6]).
bool parse_listen(const std::string& text, std::string* host, int* port, std::string* error);

// Fills cfg->publish_token from --publish-token-file (first line, trimmed) or, without the
// flag, from the RT_PUBLISH_TOKEN environment variable. Fails when the file cannot be read
// or holds an empty token.
bool load_publish_token(Config* cfg, std::string* error);

// Reads a token file (first line, trimmed) into *token; false with *error (naming the file,
// never its content) when it cannot be read or holds no token. Used at start and on SIGHUP.
bool read_token_file(const std::string& path, std::string* token, std::string* error);

// --max-connections resolved: `configured`, or with 0 the soft file limit `nofile` less a
// reserve for everything else the process opens (Redis links, pipes, epoll, files served):
// 64 + 16 per worker, at least half the limit left to connections.
size_t resolve_max_connections(size_t configured, uint64_t nofile, int threads);

// Worker `index`'s share of `total` connections over `threads` workers (at least 1).
size_t connection_share(size_t total, int threads, int index);

// The --help text.
std::string usage();

}  // namespace rt
