// Unit tests of the pure parts of server/src/publish: query parsing and the token check.
#include "cmocka_wrap.hpp"

#include <string>

#include <unistd.h>

#include "config.hpp"
#include "publish.hpp"

static void test_query(void**) {
  std::string c, err;
  uint32_t backlog = 0;
  assert_true(rt::parse_publish_query("c=thread.42", 100, &c, &backlog, &err));
  assert_string_equal(c.c_str(), "thread.42");
  assert_int_equal(backlog, 100);
  assert_true(rt::parse_publish_query("backlog=1&c=s%3A1&cachebreak=9", 100, &c, &backlog, &err));
  assert_string_equal(c.c_str(), "s:1");
  assert_int_equal(backlog, 1);
  assert_true(rt::parse_publish_query("c=a&backlog=10000", 100, &c, &backlog, &err));
  assert_int_equal(backlog, 10000);
}

static void test_bad_query(void**) {
  const char* bad[][2] = {
      {"", "'c'"},           {"backlog=5", "'c'"},          {"c=a&c=b", "'c'"},       {"c=a%20b", "'c'"},
      {"c=", "'c'"},         {"c=a&backlog=0", "'backlog'"}, {"c=a&backlog=10001", "'backlog'"},
      {"c=a&backlog=x", "'backlog'"}, {"c=a&backlog=1&backlog=2", "'backlog'"}, {"c=a&zzz=1", "'zzz'"},
      {"c=a%zz", "percent"},
  };
  for (auto& b : bad) {
    std::string c, err;
    uint32_t backlog = 0;
    if (rt::parse_publish_query(b[0], 100, &c, &backlog, &err)) fail_msg("accepted %s", b[0]);
    if (err.find(b[1]) == std::string::npos) fail_msg("error for %s does not name %s: %s", b[0], b[1], err.c_str());
  }
}

static void test_token(void**) {
  assert_true(rt::token_matches("s3cret", "s3cret"));
  assert_false(rt::token_matches("s3cre", "s3cret"));
  assert_false(rt::token_matches("s3cretx", "s3cret"));
  assert_false(rt::token_matches("", "s3cret"));
  assert_false(rt::token_matches("", ""));  // no configured token never matches
  assert_false(rt::token_matches("S3cret", "s3cret"));
}

static void test_token_store(void**) {
  rt::publish_token::set("first");
  std::shared_ptr<const std::string> held = rt::publish_token::current();
  assert_string_equal(held->c_str(), "first");
  rt::publish_token::set("second");  // a publish in progress keeps the token it read
  assert_string_equal(held->c_str(), "first");
  assert_string_equal(rt::publish_token::current()->c_str(), "second");
  rt::publish_token::set("");
  assert_true(rt::publish_token::current()->empty());
  assert_false(rt::token_matches("", *rt::publish_token::current()));
}

static void test_token_file(void**) {
  char path[] = "/tmp/rt-token-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  std::string token, err;
  { std::ofstream(path) << "  s3cret \nsecond line\n"; }
  assert_true(rt::read_token_file(path, &token, &err));
  assert_string_equal(token.c_str(), "s3cret");
  { std::ofstream(path) << " \n"; }
  assert_false(rt::read_token_file(path, &token, &err));
  assert_string_equal(token.c_str(), "s3cret");  // unchanged on failure
  assert_true(err.find(path) != std::string::npos);
  unlink(path);
  assert_false(rt::read_token_file(path, &token, &err));
}

int main() {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_query), cmocka_unit_test(test_bad_query),
                                     cmocka_unit_test(test_token), cmocka_unit_test(test_token_store),
                                     cmocka_unit_test(test_token_file)};
  return cmocka_run_group_tests_name("server/publish", tests, nullptr, nullptr);
}
