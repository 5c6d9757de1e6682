// Unit tests of server/src/config: the command line is rt-server's public interface.
#include "cmocka_wrap.hpp"

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "config.hpp"

using rt::Config;
using rt::ParseResult;

static ParseResult parse(std::vector<const char*> args, Config* c, std::string* err) {
  args.insert(args.begin(), "rt-server");
  return rt::parse_args(int(args.size()), args.data(), c, err);
}

static void test_defaults(void**) {
  Config c;
  std::string err;
  assert_int_equal(int(parse({}, &c, &err)), int(ParseResult::ok));
  assert_string_equal(c.listen_host.c_str(), "127.0.0.1");
  assert_int_equal(c.listen_port, 8080);
  assert_false(c.redis.unix_socket);
  assert_int_equal(c.redis.port, 6379);
  assert_true(c.poll_timeout_s == 25.0);
  assert_int_equal(c.backlog, 100);
  assert_int_equal(c.ttl_s, 7 * 24 * 3600);
  assert_int_equal(c.max_channels, 500);
  assert_int_equal(c.max_url, 65536);
  assert_int_equal(c.max_body, 65536);
  assert_string_equal(c.key_prefix.c_str(), "channel:");
  assert_int_equal(c.threads, 1);
  assert_false(c.reuseport);
  assert_int_equal(c.idle_timeout_s, 0);
  assert_int_equal(c.request_timeout_s, 30);
  assert_true(c.web_dir.empty());
  assert_true(c.cors_origin.empty());
}

static void test_every_flag(void**) {
  Config c;
  std::string err;
  ParseResult r = parse({"--listen", "0.0.0.0:9000", "--redis", "redis://10.0.0.5:7000/3",
                         "--publish-token-file", "/tmp/tok", "--poll-timeout", "0.25", "--backlog", "10",
                         "--ttl", "0", "--max-channels", "20", "--max-url", "5000", "--max-body=1024",
                         "--web", "web", "--max-held", "7", "--key-prefix", "rt:", "--cors-origin",
                         "http://127.0.0.1:3000", "--log-level", "debug", "--threads", "2", "--lua-dir",
                         "/x/lua", "--redis-timeout", "0.5", "--reuseport", "--idle-timeout", "7",
                         "--request-timeout=9"},
                        &c, &err);
  assert_int_equal(int(r), int(ParseResult::ok));
  assert_string_equal(c.listen_host.c_str(), "0.0.0.0");
  assert_int_equal(c.listen_port, 9000);
  assert_string_equal(c.redis.host.c_str(), "10.0.0.5");
  assert_int_equal(c.redis.port, 7000);
  assert_int_equal(c.redis.db, 3);
  assert_string_equal(c.publish_token_file.c_str(), "/tmp/tok");
  assert_true(c.poll_timeout_s == 0.25);
  assert_int_equal(c.backlog, 10);
  assert_int_equal(c.ttl_s, 0);
  assert_int_equal(c.max_channels, 20);
  assert_int_equal(c.max_url, 5000);
  assert_int_equal(c.max_body, 1024);
  assert_string_equal(c.web_dir.c_str(), "web");
  assert_int_equal(c.max_held, 7);
  assert_string_equal(c.key_prefix.c_str(), "rt:");
  assert_string_equal(c.cors_origin.c_str(), "http://127.0.0.1:3000");
  assert_int_equal(int(c.log_level), int(rt::log::Level::debug));
  assert_int_equal(c.threads, 2);
  assert_string_equal(c.lua_dir.c_str(), "/x/lua");
  assert_true(c.redis_timeout_s == 0.5);
  assert_true(c.reuseport);
  assert_int_equal(c.idle_timeout_s, 7);
  assert_int_equal(c.request_timeout_s, 9);
}

static void test_bad_flags(void**) {
  const std::vector<std::vector<const char*>> bad = {
      {"--nope"},
      {"positional"},
      {"--listen"},
      {"--listen", "nocolon"},
      {"--listen", "127.0.0.1:99999"},
      {"--listen", "127.0.0.1:x"},
      {"--redis", "http://x"},
      {"--redis", "redis://h:0"},
      {"--redis", "redis://h:70000"},
      {"--redis", "redis://h:1/x"},
      {"--redis", "redis://user@h:1"},
      {"--redis", "unix://relative"},
      {"--poll-timeout", "0"},
      {"--poll-timeout", "-1"},
      {"--poll-timeout", "1e3"},
      {"--poll-timeout", "abc"},
      {"--backlog", "0"},
      {"--backlog", "10001"},
      {"--ttl", "-5"},
      {"--max-channels", "0"},
      {"--max-url", "10"},
      {"--max-body", "0"},
      {"--max-held", "0"},
      {"--log-level", "verbose"},
      {"--threads", "0"},
      {"--threads", "two"},
      {"--cors-origin", "a\nb"},
      {"--idle-timeout", "0"},
      {"--idle-timeout", "1.5"},
      {"--request-timeout", "0"},
      {"--max-connections", "-1"},
      {"--max-connections", "10000001"},
      {"--max-connections", "many"},
  };
  for (const auto& args : bad) {
    Config c;
    std::string err;
    assert_int_equal(int(parse(args, &c, &err)), int(ParseResult::error));
    assert_false(err.empty());
    // The message names the flag it is about.
    if (args[0][0] == '-' && args[0][1] == '-') assert_non_null(strstr(err.c_str(), args[0]));
  }
  // A switch takes no value.
  Config c;
  std::string err;
  assert_int_equal(int(parse({"--reuseport=yes"}, &c, &err)), int(ParseResult::error));
  assert_non_null(strstr(err.c_str(), "--reuseport"));
}

// --cors-credentials: only with an explicit origin (browsers reject credentials with '*').
static void test_cors_credentials(void**) {
  Config c;
  std::string err;
  assert_int_equal(int(parse({"--cors-origin", "https://a.example", "--cors-credentials"}, &c, &err)),
                   int(ParseResult::ok));
  assert_true(c.cors_credentials);
  for (std::vector<const char*> args : std::vector<std::vector<const char*>>{
           {"--cors-credentials"}, {"--cors-origin", "*", "--cors-credentials"}, {"--cors-credentials=1"}}) {
    Config d;
    err.clear();
    assert_int_equal(int(parse(args, &d, &err)), int(ParseResult::error));
    assert_non_null(strstr(err.c_str(), "--cors-credentials"));
  }
  Config d;
  assert_int_equal(int(parse({}, &d, &err)), int(ParseResult::ok));
  assert_false(d.cors_credentials);
}

// --max-connections: 0 (the default) is the file limit less a reserve; a bound is split
// between the workers so that the shares add up to it.
static void test_max_connections(void**) {
  Config c;
  std::string err;
  assert_int_equal(int(parse({}, &c, &err)), int(ParseResult::ok));
  assert_int_equal(c.max_connections, 0);
  assert_int_equal(int(parse({"--max-connections", "5000"}, &c, &err)), int(ParseResult::ok));
  assert_int_equal(c.max_connections, 5000);
  assert_int_equal(rt::resolve_max_connections(5000, 20000, 4), 5000);
  assert_int_equal(rt::resolve_max_connections(0, 20000, 1), 20000 - 80);
  assert_int_equal(rt::resolve_max_connections(0, 20000, 4), 20000 - 128);
  assert_int_equal(rt::resolve_max_connections(0, 48, 1), 24);  // at least half for connections
  assert_int_equal(rt::resolve_max_connections(0, 1, 1), 1);
  size_t sum = 0;
  for (int i = 0; i < 3; i++) sum += rt::connection_share(10, 3, i);
  assert_int_equal(sum, 10);
  assert_int_equal(rt::connection_share(10, 3, 0), 4);
  assert_int_equal(rt::connection_share(10, 3, 2), 3);
  assert_int_equal(rt::connection_share(2, 4, 3), 1);  // never 0: every worker can serve
}

static void test_help(void**) {
  Config c;
  std::string err;
  assert_int_equal(int(parse({"--help"}, &c, &err)), int(ParseResult::help));
  std::string u = rt::usage();
  for (const char* flag : {"--listen", "--redis", "--publish-token-file", "--poll-timeout", "--backlog", "--ttl",
                           "--max-channels", "--max-url", "--max-body", "--web", "--max-held", "--key-prefix",
                           "--cors-origin", "--log-level", "--threads", "--lua-dir", "--redis-timeout", "--reuseport",
                           "--idle-timeout", "--request-timeout", "--cors-credentials", "--max-connections"})
    assert_non_null(strstr(u.c_str(), flag));
}

static void test_redis_urls(void**) {
  rt::RedisAddress a;
  std::string err;
  assert_true(rt::parse_redis_url("redis://127.0.0.1:6380", &a, &err));
  assert_string_equal(a.host.c_str(), "127.0.0.1");
  assert_int_equal(a.port, 6380);
  assert_int_equal(a.db, 0);
  assert_true(rt::parse_redis_url("redis://localhost", &a, &err));
  assert_int_equal(a.port, 6379);
  assert_true(rt::parse_redis_url("redis://localhost/", &a, &err));
  assert_int_equal(a.db, 0);
  assert_true(rt::parse_redis_url("redis://[::1]:7000/2", &a, &err));
  assert_string_equal(a.host.c_str(), "::1");
  assert_int_equal(a.port, 7000);
  assert_int_equal(a.db, 2);
  assert_true(rt::parse_redis_url("unix:///run/redis.sock", &a, &err));
  assert_true(a.unix_socket);
  assert_string_equal(a.path.c_str(), "/run/redis.sock");
  assert_true(rt::parse_redis_url("redis://:s%40cret@db.local:6390/1", &a, &err));
  assert_string_equal(a.password.c_str(), "s@cret");
  assert_true(a.user.empty());
  assert_string_equal(a.host.c_str(), "db.local");
  assert_int_equal(a.port, 6390);
  assert_true(rt::parse_redis_url("redis://app:pw@h", &a, &err));
  assert_string_equal(a.user.c_str(), "app");
  assert_string_equal(a.password.c_str(), "pw");
  assert_string_equal(rt::redact_redis_url("redis://app:pw@h:1/2").c_str(), "redis://***@h:1/2");
  assert_string_equal(rt::redact_redis_url("redis://h:1").c_str(), "redis://h:1");
  assert_false(rt::parse_redis_url("redis://nopassword@h", &a, &err));
  assert_false(rt::parse_redis_url("redis://", &a, &err));
  assert_false(rt::parse_redis_url("redis://[::1", &a, &err));
}

static void test_cluster_urls(void**) {
  rt::RedisAddress a;
  std::string err;
  assert_true(rt::parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002", &a, &err));
  assert_true(a.via_cluster());
  assert_false(a.via_sentinel());
  assert_int_equal(a.cluster_seeds.size(), 3);
  assert_string_equal(a.cluster_seeds[0].host.c_str(), "10.0.0.1");
  assert_int_equal(a.cluster_seeds[0].port, 7000);
  assert_int_equal(a.cluster_seeds[1].port, 6379);  // the Redis default port
  assert_string_equal(a.cluster_seeds[2].host.c_str(), "::1");
  assert_true(a.password.empty());
  assert_true(a.host.empty());  // the masters come from the slot map
  assert_int_equal(a.db, 0);
  assert_true(rt::parse_redis_url("redis+cluster://app:s%40cret@n1:1/", &a, &err));
  assert_string_equal(a.user.c_str(), "app");
  assert_string_equal(a.password.c_str(), "s@cret");
  assert_int_equal(a.cluster_seeds.size(), 1);
  assert_string_equal(rt::redact_redis_url("redis+cluster://app:s%40cret@n1:1").c_str(), "redis+cluster://***@n1:1");
  assert_true(rt::parse_redis_url("redis://h:1", &a, &err));
  assert_false(a.via_cluster());
  for (const char* bad : {"redis+cluster://", "redis+cluster://n1/3", "redis+cluster://n1?x=1", "redis+cluster://n1,,n2",
                          "redis+cluster://n1:0", "redis+cluster://user@n1", "redis+cluster://[::1",
                          "redis+cluster://n,n,n,n,n,n,n,n,n,n,n,n,n,n,n,n,n"}) {
    err.clear();
    assert_false(rt::parse_redis_url(bad, &a, &err));
    assert_false(err.empty());
  }
  assert_non_null(strstr(rt::usage().c_str(), "redis+cluster://"));
  // WAIT on a cluster is not supported: refused at start, naming the flag.
  rt::Config c;
  const char* argv[] = {"rt-server", "--redis", "redis+cluster://n1:7000", "--publish-min-replicas", "1"};
  assert_int_equal(int(rt::parse_args(5, argv, &c, &err)), int(rt::ParseResult::error));
  assert_non_null(strstr(err.c_str(), "--publish-min-replicas"));
  const char* ok_argv[] = {"rt-server", "--redis", "redis+cluster://n1:7000", "--publish-min-replicas", "0"};
  rt::Config c2;
  assert_int_equal(int(rt::parse_args(5, ok_argv, &c2, &err)), int(rt::ParseResult::ok));
  assert_true(c2.redis.via_cluster());
}

static void test_sentinel_urls(void**) {
  rt::RedisAddress a;
  std::string err;
  assert_true(rt::parse_redis_url("redis+sentinel://10.0.0.1:26380,10.0.0.2,[::1]:5000/mymaster", &a, &err));
  assert_true(a.via_sentinel());
  assert_int_equal(a.sentinels.size(), 3);
  assert_string_equal(a.sentinels[0].host.c_str(), "10.0.0.1");
  assert_int_equal(a.sentinels[0].port, 26380);
  assert_string_equal(a.sentinels[1].host.c_str(), "10.0.0.2");
  assert_int_equal(a.sentinels[1].port, 26379);  // the sentinel default port
  assert_string_equal(a.sentinels[2].host.c_str(), "::1");
  assert_int_equal(a.sentinels[2].port, 5000);
  assert_string_equal(a.master_name.c_str(), "mymaster");
  assert_int_equal(a.db, 0);
  assert_true(a.password.empty());
  assert_true(a.sentinel_password.empty());
  assert_true(a.host.empty());  // unknown until the sentinels say
  assert_false(a.unix_socket);

  // Credentials: on the data nodes and, by default, on the sentinels.
  assert_true(rt::parse_redis_url("redis+sentinel://app:s%40cret@s1:1,s2:2/m-1.a?db=3", &a, &err));
  assert_string_equal(a.user.c_str(), "app");
  assert_string_equal(a.password.c_str(), "s@cret");
  assert_string_equal(a.sentinel_user.c_str(), "app");
  assert_string_equal(a.sentinel_password.c_str(), "s@cret");
  assert_string_equal(a.master_name.c_str(), "m-1.a");
  assert_int_equal(a.db, 3);
  assert_int_equal(a.sentinels.size(), 2);
  // Password only (no ACL user), and the sentinels with their own or none.
  assert_true(rt::parse_redis_url("redis+sentinel://:pw@s/m?sentinel_password=spw&sentinel_user=watch", &a, &err));
  assert_true(a.user.empty());
  assert_string_equal(a.password.c_str(), "pw");
  assert_string_equal(a.sentinel_user.c_str(), "watch");
  assert_string_equal(a.sentinel_password.c_str(), "spw");
  assert_true(rt::parse_redis_url("redis+sentinel://:pw@s/m?sentinel_password=", &a, &err));
  assert_string_equal(a.password.c_str(), "pw");
  assert_true(a.sentinel_password.empty());
  assert_true(a.sentinel_user.empty());
  // A fresh parse starts from nothing (no sentinel left over from the last one).
  assert_true(rt::parse_redis_url("redis+sentinel://s/m", &a, &err));
  assert_int_equal(a.sentinels.size(), 1);
  assert_true(rt::parse_redis_url("redis://h:1", &a, &err));
  assert_false(a.via_sentinel());

  for (const char* bad : {"redis+sentinel://s1,s2", "redis+sentinel://s1/", "redis+sentinel:///m",
                          "redis+sentinel://s1,,s2/m", "redis+sentinel://s1:0/m", "redis+sentinel://s1:99999/m",
                          "redis+sentinel://user@s1/m", "redis+sentinel://s1/m?db=x", "redis+sentinel://s1/m?db=",
                          "redis+sentinel://s1/m?db=1&db=2", "redis+sentinel://s1/m?other=1",
                          "redis+sentinel://s1/m?db", "redis+sentinel://s1/a%20b", "redis+sentinel://s1/a/b",
                          "redis+sentinel://[::1/m", "redis+sentinel://s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s/m"}) {
    err.clear();
    assert_false(rt::parse_redis_url(bad, &a, &err));
    assert_non_null(strstr(err.c_str(), "--redis"));
  }
  // Logs never show a password.
  assert_string_equal(rt::redact_redis_url("redis+sentinel://u:pw@s1:1,s2/m?db=2").c_str(),
                      "redis+sentinel://***@s1:1,s2/m?db=2");
  assert_string_equal(rt::redact_redis_url("redis+sentinel://s1/m?sentinel_password=x&db=1").c_str(),
                      "redis+sentinel://s1/m?sentinel_password=***&db=1");
  assert_string_equal(rt::redact_redis_url("redis+sentinel://:a@s1/m?db=1&sentinel_password=x@y").c_str(),
                      "redis+sentinel://***@s1/m?db=1&sentinel_password=***");

  // As the --redis flag.
  Config c;
  assert_int_equal(int(parse({"--redis", "redis+sentinel://:pw@127.0.0.1:26379/rt"}, &c, &err)), int(ParseResult::ok));
  assert_true(c.redis.via_sentinel());
  assert_string_equal(c.redis_url.c_str(), "redis+sentinel://***@127.0.0.1:26379/rt");
}

static void test_publish_min_replicas(void**) {
  Config c;
  std::string err;
  assert_int_equal(c.publish_min_replicas, 0);
  assert_int_equal(int(parse({"--publish-min-replicas", "2"}, &c, &err)), int(ParseResult::ok));
  assert_int_equal(c.publish_min_replicas, 2);
  for (const char* bad : {"-1", "x", "101", ""}) {
    Config d;
    assert_int_equal(int(parse({"--publish-min-replicas", bad}, &d, &err)), int(ParseResult::error));
    assert_non_null(strstr(err.c_str(), "--publish-min-replicas"));
  }
  assert_non_null(strstr(rt::usage().c_str(), "--publish-min-replicas"));
  assert_non_null(strstr(rt::usage().c_str(), "redis+sentinel://"));
}

static void test_token(void**) {
  Config c;
  std::string err;
  unsetenv("RT_PUBLISH_TOKEN");
  assert_true(rt::load_publish_token(&c, &err));
  assert_true(c.publish_token.empty());
  setenv("RT_PUBLISH_TOKEN", "from-env", 1);
  assert_true(rt::load_publish_token(&c, &err));
  assert_string_equal(c.publish_token.c_str(), "from-env");
  const char* path = "build/test-config-token";
  {
    std::ofstream f(path);
    f << "  s3cret \n second line\n";
  }
  c.publish_token_file = path;
  assert_true(rt::load_publish_token(&c, &err));
  assert_string_equal(c.publish_token.c_str(), "s3cret");  // the file wins over the env
  {
    std::ofstream f(path);
    f << "\n";
  }
  assert_false(rt::load_publish_token(&c, &err));
  c.publish_token_file = "build/does-not-exist/token";
  assert_false(rt::load_publish_token(&c, &err));
  unsetenv("RT_PUBLISH_TOKEN");
  remove(path);
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),  cmocka_unit_test(test_every_flag), cmocka_unit_test(test_bad_flags), cmocka_unit_test(test_cors_credentials),
      cmocka_unit_test(test_help),      cmocka_unit_test(test_max_connections),      cmocka_unit_test(test_redis_urls), cmocka_unit_test(test_token),
      cmocka_unit_test(test_sentinel_urls), cmocka_unit_test(test_cluster_urls), cmocka_unit_test(test_publish_min_replicas),
  };
  return cmocka_run_group_tests_name("server/config", tests, nullptr, nullptr);
}
