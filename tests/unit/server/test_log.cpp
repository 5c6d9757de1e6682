// Unit tests of server/src/log: levels and logfmt quoting.
#include "cmocka_wrap.hpp"

#include "log.hpp"

static void test_levels(void**) {
  rt::log::Level l = rt::log::Level::info;
  assert_true(rt::log::parse_level("debug", &l));
  assert_int_equal(int(l), int(rt::log::Level::debug));
  assert_true(rt::log::parse_level("error", &l));
  assert_false(rt::log::parse_level("INFO", &l));
  rt::log::set_level(rt::log::Level::warn);
  assert_false(rt::log::enabled(rt::log::Level::info));
  assert_true(rt::log::enabled(rt::log::Level::warn));
  assert_true(rt::log::enabled(rt::log::Level::error));
  rt::log::set_level(rt::log::Level::info);
}

static void test_quote(void**) {
  assert_string_equal(rt::log::quote("plain").c_str(), "plain");
  assert_string_equal(rt::log::quote("").c_str(), "\"\"");
  assert_string_equal(rt::log::quote("two words").c_str(), "\"two words\"");
  assert_string_equal(rt::log::quote("a=b").c_str(), "\"a=b\"");
  assert_string_equal(rt::log::quote("say \"hi\"\n").c_str(), "\"say \\\"hi\\\"\\n\"");
  assert_string_equal(rt::log::quote(std::string("\x01", 1)).c_str(), "\"\\x01\"");
}

int main() {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_levels), cmocka_unit_test(test_quote)};
  return cmocka_run_group_tests_name("server/log", tests, nullptr, nullptr);
}
