// Unit tests of the shared protocol module (server/protocol): the rules of PROTOCOL.md that
// both server and client apply.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
extern "C" {
#include <cmocka.h>
}

#include <string>
#include <vector>

#include "protocol.hpp"

using namespace rt::proto;

static void test_channel_names(void**) {
  assert_true(valid_channel_name("127"));
  assert_true(valid_channel_name("thread.42:comments_A-z"));
  assert_true(valid_channel_name(std::string(128, 'a')));
  assert_false(valid_channel_name(std::string(129, 'a')));
  assert_false(valid_channel_name(""));
  for (const char* bad : {"a b", "a/b", "a%b", "a\"b", "a{b", "a\\b", "é", "a\nb", "a&b", "a=b"})
    assert_false(valid_channel_name(bad));
  assert_false(valid_channel_name(std::string("a\0b", 3)));
}

static void test_ids(void**) {
  uint64_t v = 99;
  assert_true(parse_id("0", &v));
  assert_int_equal(v, 0);
  assert_true(parse_id("9007199254740991", &v));
  assert_int_equal(v, kMaxId);
  assert_true(parse_id("0007", &v));
  assert_int_equal(v, 7);
  v = 99;
  for (const char* bad : {"9007199254740992", "99999999999999999", "-1", "+1", "1e3", " 1", "1 ", "",
                          "0x10", "1.0", "18446744073709551617"})
    assert_false(parse_id(bad, &v));
  assert_int_equal(v, 99);  // untouched on failure
}

static QueryError parse(const char* q, std::vector<ChannelPos>* out, std::string* detail, size_t max = 500) {
  return parse_rt_query(q, max, out, detail);
}

static void test_query_good(void**) {
  std::vector<ChannelPos> out;
  std::string detail;
  assert_int_equal(parse("c=127&m=1&c=389&m=20&cachebreak=2394802", &out, &detail), QueryError::none);
  assert_int_equal(out.size(), 2);
  assert_string_equal(out[0].channel.c_str(), "127");
  assert_int_equal(out[0].last_id, 1);
  assert_string_equal(out[1].channel.c_str(), "389");
  assert_int_equal(out[1].last_id, 20);

  // cachebreak anywhere, any number of times, even without a value; empty parts skipped
  assert_int_equal(parse("cachebreak&c=a%3Ab&cachebreak=x&m=0&&", &out, &detail), QueryError::none);
  assert_int_equal(out.size(), 1);
  assert_string_equal(out[0].channel.c_str(), "a:b");  // percent-encoded ':' is decoded
  assert_int_equal(out[0].last_id, 0);
}

static void expect_bad(const char* q, const char* needle, size_t max = 500) {
  std::vector<ChannelPos> out;
  std::string detail;
  if (parse(q, &out, &detail, max) != QueryError::bad_request) fail_msg("accepted: %s", q);
  assert_true(out.empty());
  if (detail.find(needle) == std::string::npos) fail_msg("query %s: detail '%s' lacks '%s'", q, detail.c_str(), needle);
}

static void test_query_bad(void**) {
  expect_bad("", "parameter c");                      // no channels
  expect_bad("cachebreak=1", "parameter c");
  expect_bad("m=1&c=a", "parameter m");               // m before c
  expect_bad("c=a&c=b&m=1", "parameter c");           // c without m
  expect_bad("c=a", "parameter m");                   // trailing c
  expect_bad("c=a&m=1&m=2", "parameter m");           // two m
  expect_bad("c=a&m=x", "parameter m");
  expect_bad("c=a&m=-1", "parameter m");
  expect_bad("c=a&m=1e3", "parameter m");
  expect_bad("c=a&m=9007199254740992", "parameter m");
  expect_bad("c=a&m=", "parameter m");
  expect_bad("c=a b&m=1", "parameter c");
  expect_bad("c=a%20b&m=1", "parameter c");
  expect_bad("c=&m=1", "parameter c");
  expect_bad(("c=" + std::string(129, 'x') + "&m=1").c_str(), "parameter c");
  expect_bad("c=a&m=1&c=a&m=2", "duplicate");
  expect_bad("c=a&m=1&x=2", "unknown parameter");
  expect_bad("c=a%2&m=1", "percent");
  expect_bad("c=a%zz&m=1", "percent");
  expect_bad("c=a&m=1&c=b&m=1&c=c&m=1", "too many", 2);
}

static void test_query_limit_exact(void**) {
  std::vector<ChannelPos> out;
  std::string detail;
  assert_int_equal(parse("c=a&m=1&c=b&m=1", &out, &detail, 2), QueryError::none);
  assert_int_equal(out.size(), 2);
}

static void test_query_build_roundtrip(void**) {
  std::vector<ChannelPos> in = {{"thread.1", 0}, {"s:9", kMaxId}, {"x", 42}};
  std::string q;
  size_t predicted = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    append_query_pair(&q, in[i], i == 0);
    predicted += query_pair_length(in[i], i == 0);
  }
  assert_string_equal(q.c_str(), "c=thread.1&m=0&c=s:9&m=9007199254740991&c=x&m=42");
  assert_int_equal(predicted, q.size());
  std::vector<ChannelPos> out;
  std::string detail;
  assert_int_equal(parse(q.c_str(), &out, &detail), QueryError::none);
  assert_int_equal(out.size(), 3);
  for (size_t i = 0; i < in.size(); ++i) {
    assert_string_equal(out[i].channel.c_str(), in[i].channel.c_str());
    assert_int_equal(out[i].last_id, in[i].last_id);
  }
}

static void test_messages(void**) {
  uint64_t id = 0;
  std::string m = make_message_json(7, "{\"a\":[1,2]}");
  assert_string_equal(m.c_str(), "{\"id\":7,\"payload\":{\"a\":[1,2]}}");
  assert_true(parse_message(m, &id));
  assert_int_equal(id, 7);
  assert_true(parse_message("{\"id\":1,\"payload\":null}", &id));
  for (const char* bad : {"", "{", "[]", "{\"id\":1}", "{\"payload\":1}", "{\"id\":0,\"payload\":1}",
                          "{\"id\":-3,\"payload\":1}", "{\"id\":\"3\",\"payload\":1}", "{\"id\":1.5,\"payload\":1}",
                          "{\"id\":9007199254740992,\"payload\":1}", "{\"id\":1,\"payload\":1,\"id\":2}",
                          "{\"id\":1,\"payload\":1} trailing"})
    assert_false(parse_message(bad, &id));
  std::string payload;
  assert_true(payload_of("{\"id\":3, \"payload\": {\"k\": \"v\"} }", &payload));
  assert_string_equal(payload.c_str(), "{\"k\":\"v\"}");
  assert_false(payload_of("{\"id\":3}", &payload));
}

static std::vector<Message> msgs(std::initializer_list<uint64_t> ids) {
  std::vector<Message> v;
  for (uint64_t id : ids) v.push_back(Message{id, make_message_json(id, std::to_string(id * 10))});
  return v;
}

static void test_decide_nothing_new(void**) {
  Entry e;
  assert_false(decide("c", 5, 5, {}, nullptr, &e));
  assert_false(decide("c", 0, 0, {}, nullptr, &e));  // channel never published
}

static void test_decide_ok(void**) {
  Entry e;
  assert_true(decide("c", 2, 4, msgs({3, 4}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_string_equal(e.channel.c_str(), "c");
  assert_int_equal(e.msgs.size(), 2);
  assert_int_equal(e.msgs[0].id, 3);
  assert_int_equal(e.msgs[1].id, 4);
  // first poll (m=0) of a channel whose whole history is still in the backlog
  assert_true(decide("c", 0, 2, msgs({1, 2}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  // a publish landed between GET msg_id and the backlog read: still ok, all of it
  assert_true(decide("c", 4, 4, msgs({5}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_int_equal(e.msgs[0].id, 5);
}

static void test_decide_reset_gap(void**) {
  Entry e;
  // backlog trimmed: the client saw 1, backlog holds 4..5
  assert_true(decide("c", 1, 5, msgs({4, 5}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.id, 5);
  assert_int_equal(e.msgs.size(), 1);
  assert_int_equal(e.msgs[0].id, 5);
  // state channel (backlog 1): missed one
  assert_true(decide("c", 3, 5, msgs({5}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.id, 5);
  // newer than L but backlog empty (deleted backlog, msg_id kept)
  assert_true(decide("c", 1, 5, {}, nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.id, 5);
  assert_true(e.msgs.empty());
}

static void test_decide_reset_lost_history(void**) {
  Entry e;
  Message tail{3, make_message_json(3, "30")};
  // Redis flushed / keys expired and republished: client is ahead of the channel
  assert_true(decide("c", 10, 3, {}, &tail, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.id, 3);
  assert_int_equal(e.msgs.size(), 1);
  assert_int_equal(e.msgs[0].id, 3);
  // everything gone
  assert_true(decide("c", 10, 0, {}, nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.id, 0);
  assert_true(e.msgs.empty());
}

static void test_build_response(void**) {
  assert_string_equal(build_response({}).c_str(), "{}");
  std::vector<Entry> entries(2);
  entries[0].channel = "127";
  entries[0].status = EntryStatus::ok;
  entries[0].msgs = msgs({2, 3});
  entries[1].channel = "389";
  entries[1].status = EntryStatus::reset;
  entries[1].id = 70;
  entries[1].msgs = msgs({70});
  std::string body = build_response(entries);
  assert_string_equal(body.c_str(),
                      "{\"127\":{\"status\":\"ok\",\"msg\":[{\"id\":2,\"payload\":20},{\"id\":3,\"payload\":30}]},"
                      "\"389\":{\"status\":\"reset\",\"id\":70,\"msg\":[{\"id\":70,\"payload\":700}]}}");

  std::vector<ReceivedEntry> got;
  std::string detail;
  assert_true(parse_response(body, &got, &detail));
  assert_int_equal(got.size(), 2);
  const ReceivedEntry* a = got[0].channel == "127" ? &got[0] : &got[1];
  const ReceivedEntry* b = got[0].channel == "127" ? &got[1] : &got[0];
  assert_int_equal(a->status, EntryStatus::ok);
  assert_int_equal(a->msgs.size(), 2);
  assert_int_equal(a->msgs[1].id, 3);
  assert_string_equal(a->msgs[1].payload_json.c_str(), "30");
  assert_int_equal(b->status, EntryStatus::reset);
  assert_int_equal(b->id, 70);
  assert_string_equal(b->msgs[0].payload_json.c_str(), "700");

  // an empty reset (nothing left in the backlog)
  assert_true(parse_response("{\"x\":{\"status\":\"reset\",\"id\":0,\"msg\":[]}}", &got, &detail));
  assert_int_equal(got[0].id, 0);
  assert_true(parse_response("{}", &got, &detail));
  assert_true(got.empty());
}

static void test_parse_response_malformed(void**) {
  std::vector<ReceivedEntry> got;
  std::string detail;
  const char* bad[] = {
      "", "null", "[]", "\"x\"", "{\"a b\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":1}]}}",
      "{\"a\":1}", "{\"a\":{\"msg\":[]}}", "{\"a\":{\"status\":\"weird\",\"msg\":[]}}",
      "{\"a\":{\"status\":\"ok\",\"msg\":[]}}", "{\"a\":{\"status\":\"ok\"}}",
      "{\"a\":{\"status\":\"reset\",\"msg\":[]}}", "{\"a\":{\"status\":\"reset\",\"id\":-1,\"msg\":[]}}",
      "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":2,\"payload\":1},{\"id\":2,\"payload\":1}]}}",
      "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":1}]}}", "{\"a\":{\"status\":\"ok\",\"msg\":[7]}}",
  };
  for (const char* b : bad) {
    detail.clear();
    if (parse_response(b, &got, &detail)) fail_msg("accepted: %s", b);
    assert_true(got.empty());
    assert_false(detail.empty());
  }
  // Every truncation of a valid body is rejected cleanly (no crash, no partial result).
  std::string body =
      "{\"c1\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":{\"t\":\"h\\u00e9\"}},{\"id\":2,\"payload\":[1,2.5]}]},"
      "\"c2\":{\"status\":\"reset\",\"id\":9,\"msg\":[{\"id\":9,\"payload\":null}]}}";
  assert_true(parse_response(body, &got, &detail));
  for (size_t n = 0; n < body.size(); ++n) {
    if (parse_response(std::string_view(body.data(), n), &got, &detail)) fail_msg("accepted prefix of %zu", n);
    assert_true(got.empty());
  }
}

// One odd but valid payload must not make a whole response unreadable (the client would
// retry it forever): NUL characters in strings and integers beyond 64 bits.
static void test_parse_response_odd_payloads(void**) {
  std::vector<ReceivedEntry> got;
  std::string detail;
  assert_true(parse_response("{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":4,\"payload\":\"x\\u0000y\"}]}}", &got, &detail));
  assert_string_equal(got[0].msgs[0].payload_json.c_str(), "\"x\\u0000y\"");
  const char* big =
      "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":5,\"payload\":{\"n\":123456789012345678901234567890}},"
      "{\"id\":6,\"payload\":7}]},\"b\":{\"status\":\"reset\",\"id\":9007199254740991,\"msg\":[]}}";
  assert_true(parse_response(big, &got, &detail));
  assert_int_equal(got.size(), 2);
  const ReceivedEntry& a = got[0].channel == "a" ? got[0] : got[1];
  const ReceivedEntry& b = got[0].channel == "a" ? got[1] : got[0];
  assert_int_equal(a.msgs[0].id, 5);
  assert_int_equal(a.msgs[1].id, 6);
  assert_string_equal(a.msgs[0].payload_json.c_str(), "{\"n\":1.2345678901234568e29}");
  assert_int_equal(b.id, kMaxId);
  // ids must still be exact integers
  assert_false(parse_response("{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":5.5,\"payload\":1e999999}]}}", &got, &detail));
  uint64_t id = 0;
  assert_true(parse_message("{\"id\":3,\"payload\":[99999999999999999999999]}", &id));
  assert_int_equal(id, 3);
  assert_true(parse_message("{\"id\":3,\"payload\":\"\\u0000\"}", &id));
}

static void test_error_body(void**) {
  assert_string_equal(error_body("parameter c: \"x\"").c_str(), "{\"error\":\"parameter c: \\\"x\\\"\"}");
  assert_string_equal(error_body(std::string("bad \xff utf8")).c_str(), "{\"error\":\"invalid request\"}");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_channel_names),         cmocka_unit_test(test_ids),
      cmocka_unit_test(test_query_good),            cmocka_unit_test(test_query_bad),
      cmocka_unit_test(test_query_limit_exact),     cmocka_unit_test(test_query_build_roundtrip),
      cmocka_unit_test(test_messages),              cmocka_unit_test(test_decide_nothing_new),
      cmocka_unit_test(test_decide_ok),             cmocka_unit_test(test_decide_reset_gap),
      cmocka_unit_test(test_decide_reset_lost_history), cmocka_unit_test(test_build_response),
      cmocka_unit_test(test_parse_response_malformed),  cmocka_unit_test(test_parse_response_odd_payloads),
      cmocka_unit_test(test_error_body),
  };
  return cmocka_run_group_tests_name("protocol", tests, nullptr, nullptr);
}
