// Unit tests of server/src/json_check: the validator that decides what POST /publish
// accepts and which backlog members are relayed.
#include "cmocka_wrap.hpp"

#include <string>

#include "json_check.hpp"

static void test_valid(void**) {
  for (const char* ok :
       {"0", "-0", "1.5", "-12.25e+3", "1E9", "12345678901234567890", "-98765432109876543210", "\"\"",
        "\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"", "true", "false", "null", "[]", "{}",
        " [1, {\"a\": [null, \"x\"]}, -3] ", "{\"a\":{\"b\":{\"c\":[[[]]]}}}", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "\"\\u0000\""})
    if (!rt::json_valid(ok)) fail_msg("refused valid JSON: %s", ok);
}

static void test_invalid(void**) {
  for (const char* bad :
       {"", " ", "01", "1.", ".5", "-", "1e", "+1", "0x10", "NaN", "Infinity", "tru", "nulll", "[1,]", "[,1]",
        "{\"a\":1,}", "{\"a\"}", "{a:1}", "{'a':1}", "[1 2]", "\"unterminated", "\"bad \\x escape\"",
        "\"\\u12\"", "\"tab\there\"", "1 2", "[1]]", "[[1]", "{\"a\":1}}", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xf5\x80\x80\x80\"", "\"\x80\"", "\"\xe2\x82\"", "// comment\n1"})
    if (rt::json_valid(bad)) fail_msg("accepted invalid JSON: %s", bad);
  assert_false(rt::json_valid(std::string("\"a\0b\"", 5)));
}

static void test_depth(void**) {
  std::string deep = std::string(1000, '[') + std::string(1000, ']');
  assert_true(rt::json_valid(deep));
  std::string deeper = std::string(1001, '[') + std::string(1001, ']');
  assert_false(rt::json_valid(deeper));
  std::string huge = std::string(200000, '[') + std::string(200000, ']');  // no stack overflow
  assert_false(rt::json_valid(huge));
  std::string objs;
  for (int i = 0; i < 500; i++) objs += "{\"k\":";
  objs += "1";
  for (int i = 0; i < 500; i++) objs += "}";
  assert_true(rt::json_valid(objs));
}

static void test_messages(void**) {
  uint64_t id = 0, prev = 0;
  // publish.lua's canonical layout
  assert_true(rt::check_message("{\"id\":1764612345678901,\"prev\":1764612345000000,\"payload\":{\"a\":[1,2]}}", &id, &prev));
  assert_int_equal(id, 1764612345678901ULL);
  assert_int_equal(prev, 1764612345000000ULL);
  assert_true(rt::check_message("{\"id\":7,\"prev\":0,\"payload\":null}", &id, &prev));
  assert_int_equal(prev, 0);
  // version 1: no prev, counts as id - 1
  assert_true(rt::check_message("{\"id\":7,\"payload\":{\"a\":[1,2]}}", &id, &prev));
  assert_int_equal(id, 7);
  assert_int_equal(prev, 6);
  assert_true(rt::check_message("{\"id\":9007199254740991,\"payload\":12345678901234567890}", &id, &prev));
  assert_int_equal(id, 9007199254740991ULL);
  // Other layouts go through the protocol module.
  assert_true(rt::check_message("{ \"payload\": \"x\", \"id\": 3 }", &id, &prev));
  assert_int_equal(id, 3);
  assert_int_equal(prev, 2);
  assert_true(rt::check_message("{\"prev\":1,\"id\":4,\"payload\":[1],\"extra\":true}", &id, &prev));
  assert_int_equal(id, 4);
  assert_int_equal(prev, 1);
  for (const char* bad : {"{\"id\":0,\"payload\":1}", "{\"id\":9007199254740992,\"payload\":1}",
                          "{\"id\":5,\"payload\":}", "{\"id\":5,\"payload\":[1}", "{\"id\":5,\"payload\":1",
                          "{\"id\":5}", "{\"id\":\"5\",\"payload\":1}", "not json", "",
                          "{\"id\":5,\"payload\":1}}", "{\"id\":5,\"prev\":5,\"payload\":1}",
                          "{\"id\":5,\"prev\":6,\"payload\":1}", "{\"id\":5,\"prev\":,\"payload\":1}",
                          "{\"id\":5,\"prev\":-1,\"payload\":1}", "{\"id\":5,\"prev\":4,\"payload\":}"})
    if (rt::check_message(bad, &id, &prev)) fail_msg("accepted invalid message: %s", bad);
}

int main() {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid),
                                     cmocka_unit_test(test_depth), cmocka_unit_test(test_messages)};
  return cmocka_run_group_tests_name("server/json_check", tests, nullptr, nullptr);
}
