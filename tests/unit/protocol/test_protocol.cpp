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

#include "keys.hpp"
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
  uint64_t id = 0, prev = 99;
  std::string m = make_message_json(7, 5, "{\"a\":[1,2]}");
  assert_string_equal(m.c_str(), "{\"id\":7,\"prev\":5,\"payload\":{\"a\":[1,2]}}");
  assert_true(parse_message(m, &id, &prev));
  assert_int_equal(id, 7);
  assert_int_equal(prev, 5);
  assert_true(parse_message("{\"id\":1,\"prev\":0,\"payload\":null}", &id, &prev));
  assert_int_equal(prev, 0);
  // version 1: no prev, counts as id - 1
  assert_true(parse_message("{\"id\":12,\"payload\":null}", &id, &prev));
  assert_int_equal(id, 12);
  assert_int_equal(prev, 11);
  // any member order
  assert_true(parse_message("{\"payload\":1,\"prev\":3,\"id\":1764612345678901}", &id, &prev));
  assert_int_equal(id, 1764612345678901ull);
  assert_int_equal(prev, 3);
  for (const char* bad : {"", "{", "[]", "{\"id\":1}", "{\"payload\":1}", "{\"id\":0,\"payload\":1}",
                          "{\"id\":-3,\"payload\":1}", "{\"id\":\"3\",\"payload\":1}", "{\"id\":1.5,\"payload\":1}",
                          "{\"id\":9007199254740992,\"payload\":1}", "{\"id\":1,\"payload\":1,\"id\":2}",
                          "{\"id\":1,\"payload\":1} trailing",
                          // prev must be an id below the message's own
                          "{\"id\":5,\"prev\":5,\"payload\":1}", "{\"id\":5,\"prev\":9,\"payload\":1}",
                          "{\"id\":5,\"prev\":-1,\"payload\":1}", "{\"id\":5,\"prev\":\"4\",\"payload\":1}",
                          "{\"id\":5,\"prev\":null,\"payload\":1}", "{\"id\":5,\"prev\":4.5,\"payload\":1}"})
    if (parse_message(bad, &id, &prev)) fail_msg("accepted invalid message: %s", bad);
  std::string payload;
  assert_true(payload_of("{\"id\":3, \"payload\": {\"k\": \"v\"} }", &payload));
  assert_string_equal(payload.c_str(), "{\"k\":\"v\"}");
  assert_true(payload_of("{\"id\":3,\"prev\":1,\"payload\":[]}", &payload));
  assert_string_equal(payload.c_str(), "[]");
  assert_false(payload_of("{\"id\":3}", &payload));
  assert_false(payload_of("{\"id\":3,\"prev\":3,\"payload\":1}", &payload));
  assert_string_equal(reason_name(ResetReason::behind), "behind");
  assert_string_equal(reason_name(ResetReason::lost), "lost");
}

// Messages linked into a chain: the first names `first_prev`, each later one the id before.
static std::vector<Message> chain(uint64_t first_prev, std::initializer_list<uint64_t> ids) {
  std::vector<Message> v;
  uint64_t prev = first_prev;
  for (uint64_t id : ids) {
    v.push_back(Message{id, prev, make_message_json(id, prev, std::to_string(id * 10))});
    prev = id;
  }
  return v;
}

// Version-1 messages: INCR ids, no prev member (prev = id - 1).
static std::vector<Message> v1(std::initializer_list<uint64_t> ids) {
  std::vector<Message> v;
  for (uint64_t id : ids)
    v.push_back(Message{id, id - 1, "{\"id\":" + std::to_string(id) + ",\"payload\":" + std::to_string(id * 10) + "}"});
  return v;
}

static void assert_ids(const Entry& e, std::initializer_list<uint64_t> ids) {
  assert_int_equal(e.msgs.size(), ids.size());
  size_t i = 0;
  for (uint64_t id : ids) assert_int_equal(e.msgs[i++].id, id);
}

static void test_decide_nothing_new(void**) {
  Entry e;
  assert_false(decide("c", 5, 5, {}, nullptr, &e));
  assert_false(decide("c", 0, 0, {}, nullptr, &e));  // channel never published
  assert_false(decide("c", 1764612345678901ull, 1764612345678901ull, {}, nullptr, &e));
}

// Row 2 of PROTOCOL.md section 3: R[0].prev == L.
static void test_decide_ok(void**) {
  Entry e;
  // time-based ids: not dense, linked by prev
  assert_true(decide("c", 1000, 3000, chain(1000, {2000, 3000}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_string_equal(e.channel.c_str(), "c");
  assert_ids(e, {2000, 3000});
  assert_int_equal(e.msgs[0].prev, 1000);
  // first poll (m=0) of a channel whose first message is still kept: all of it
  assert_true(decide("c", 0, 20, chain(0, {10, 20}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_ids(e, {10, 20});
  // a publish landed between GET msg_id and the backlog read: still ok, all of it
  assert_true(decide("c", 4, 4, chain(4, {9}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_ids(e, {9});
  // version-1 data: INCR ids without prev
  assert_true(decide("c", 2, 4, v1({3, 4}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_ids(e, {3, 4});
  // version-1 history followed by a version-2 publish linked to it
  std::vector<Message> mixed = v1({3, 4});
  for (Message& m : chain(4, {1764612345678901ull})) mixed.push_back(m);
  assert_true(decide("c", 2, 1764612345678901ull, mixed, nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_ids(e, {3, 4, 1764612345678901ull});
}

// The ok list is cut at the first break; the next poll, from its last id, gets the reset.
static void test_decide_ok_cut_at_break(void**) {
  Entry e;
  std::vector<Message> r = chain(5, {6, 7});
  for (Message& m : chain(0, {100, 101})) r.push_back(m);  // history restarted after a loss
  assert_true(decide("c", 5, 101, r, nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_ids(e, {6, 7});
  // the next poll from 7
  assert_true(decide("c", 7, 101, chain(0, {100, 101}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::lost);
  assert_int_equal(e.id, 101);
  assert_ids(e, {101});
  // a skipped (invalid) message in the middle is a break too
  std::vector<Message> holes = chain(10, {11, 12, 13});
  holes.erase(holes.begin() + 1);
  assert_true(decide("c", 10, 13, holes, nullptr, &e));
  assert_int_equal(e.status, EntryStatus::ok);
  assert_ids(e, {11});
}

// Row 3, reason behind: L older than everything the backlog links to.
static void test_decide_reset_behind(void**) {
  Entry e;
  // backlog trimmed: the client saw 1, the backlog holds 4..5 (4 follows 3)
  assert_true(decide("c", 1, 5, chain(3, {4, 5}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::behind);
  assert_int_equal(e.id, 5);
  assert_ids(e, {5});
  // state channel (backlog 1): missed one
  assert_true(decide("c", 300, 500, chain(400, {500}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::behind);
  assert_int_equal(e.id, 500);
  // m=0 when the first message is no longer kept
  assert_true(decide("c", 0, 500, chain(400, {500}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::behind);
  // version-1 data trimmed
  assert_true(decide("c", 1, 9, v1({8, 9}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::behind);
}

// Row 3, reason lost: L is not part of the history Redis now has.
static void test_decide_reset_lost(void**) {
  Entry e;
  Message tail = chain(0, {3})[0];
  // version-1 style: client ahead of the channel (L > N)
  assert_true(decide("c", 10, 3, {}, &tail, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::lost);
  assert_int_equal(e.id, 3);
  assert_ids(e, {3});
  // everything gone
  assert_true(decide("c", 10, 0, {}, nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::lost);
  assert_int_equal(e.id, 0);
  assert_true(e.msgs.empty());
  // flushed, then republished with time ids above L: the new chain starts at 0, not L
  assert_true(decide("c", 1000, 3000, chain(0, {2000, 3000}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::lost);
  assert_int_equal(e.id, 3000);
  assert_ids(e, {3000});
  // rolled back: L was issued by the lost history, between ids the backlog holds
  assert_true(decide("c", 2500, 4000, chain(2000, {3000, 4000}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::lost);
  assert_ids(e, {4000});
  // newer than L but the backlog is empty (deleted backlog, msg_id kept)
  assert_true(decide("c", 1, 5, {}, nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::lost);
  assert_int_equal(e.id, 5);
  assert_true(e.msgs.empty());
  // L inside the span the backlog covers, but never issued (ids 10, 20, 30; L = 15)
  assert_true(decide("c", 15, 30, chain(10, {20, 30}), nullptr, &e));
  assert_int_equal(e.status, EntryStatus::reset);
  assert_int_equal(e.reason, ResetReason::lost);
}

static void test_build_response(void**) {
  assert_string_equal(build_response({}).c_str(), "{}");
  std::vector<Entry> entries(2);
  entries[0].channel = "127";
  entries[0].status = EntryStatus::ok;
  entries[0].msgs = chain(1, {2, 3});
  entries[1].channel = "389";
  entries[1].status = EntryStatus::reset;
  entries[1].id = 70;
  entries[1].reason = ResetReason::behind;
  entries[1].msgs = chain(60, {70});
  std::string body = build_response(entries);
  assert_string_equal(body.c_str(),
                      "{\"127\":{\"status\":\"ok\",\"msg\":[{\"id\":2,\"prev\":1,\"payload\":20},{\"id\":3,\"prev\":2,\"payload\":30}]},"
                      "\"389\":{\"status\":\"reset\",\"id\":70,\"reason\":\"behind\",\"msg\":[{\"id\":70,\"prev\":60,\"payload\":700}]}}");

  std::vector<ReceivedEntry> got;
  std::string detail;
  assert_true(parse_response(body, &got, &detail));
  assert_int_equal(got.size(), 2);
  const ReceivedEntry* a = got[0].channel == "127" ? &got[0] : &got[1];
  const ReceivedEntry* b = got[0].channel == "127" ? &got[1] : &got[0];
  assert_int_equal(a->status, EntryStatus::ok);
  assert_int_equal(a->msgs.size(), 2);
  assert_int_equal(a->msgs[1].id, 3);
  assert_int_equal(a->msgs[1].prev, 2);
  assert_string_equal(a->msgs[1].payload_json.c_str(), "30");
  assert_int_equal(b->status, EntryStatus::reset);
  assert_int_equal(b->id, 70);
  assert_int_equal(b->reason, ResetReason::behind);
  assert_int_equal(b->msgs[0].prev, 60);
  assert_string_equal(b->msgs[0].payload_json.c_str(), "700");

  // an empty reset (nothing left in the backlog)
  assert_true(parse_response("{\"x\":{\"status\":\"reset\",\"id\":0,\"reason\":\"lost\",\"msg\":[]}}", &got, &detail));
  assert_int_equal(got[0].id, 0);
  assert_int_equal(got[0].reason, ResetReason::lost);
  // a version-1 server: no reason (lost), no prev (id - 1); an unknown reason counts as lost
  assert_true(parse_response("{\"x\":{\"status\":\"reset\",\"id\":4,\"msg\":[{\"id\":4,\"payload\":1}]}}", &got, &detail));
  assert_int_equal(got[0].reason, ResetReason::lost);
  assert_int_equal(got[0].msgs[0].prev, 3);
  assert_true(parse_response("{\"x\":{\"status\":\"reset\",\"id\":4,\"reason\":\"moved\",\"msg\":[]}}", &got, &detail));
  assert_int_equal(got[0].reason, ResetReason::lost);
  // a broken chain is not a parse error (the client core turns it into a lost reset)
  assert_true(parse_response("{\"x\":{\"status\":\"ok\",\"msg\":[{\"id\":4,\"prev\":2,\"payload\":1},{\"id\":9,\"prev\":7,\"payload\":1}]}}", &got, &detail));
  assert_int_equal(got[0].msgs[1].prev, 7);
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
      "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":3,\"prev\":3,\"payload\":1}]}}",
      "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":3,\"prev\":\"2\",\"payload\":1}]}}",
      "{\"a\":{\"status\":\"reset\",\"id\":3,\"reason\":7,\"msg\":[]}}",
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
      "\"c2\":{\"status\":\"reset\",\"id\":9,\"reason\":\"behind\",\"msg\":[{\"id\":9,\"prev\":8,\"payload\":null}]}}";
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
  uint64_t prev = 0;
  assert_true(parse_message("{\"id\":3,\"prev\":1,\"payload\":[99999999999999999999999]}", &id, &prev));
  assert_int_equal(id, 3);
  assert_int_equal(prev, 1);
  assert_true(parse_message("{\"id\":3,\"payload\":\"\\u0000\"}", &id, &prev));
}

static void test_error_body(void**) {
  assert_string_equal(error_body("parameter c: \"x\"").c_str(), "{\"error\":\"parameter c: \\\"x\\\"\"}");
  assert_string_equal(error_body(std::string("bad \xff utf8")).c_str(), "{\"error\":\"invalid request\"}");
}

// The Redis names of a channel (PROTOCOL.md section 2) and back from a pub/sub name.
static void test_keys(void**) {
  Keys k;  // the default prefix
  assert_string_equal(k.msg_id("127").c_str(), "channel:{127}:msg_id");
  assert_string_equal(k.backlog("127").c_str(), "channel:{127}:msg_backlog");
  assert_string_equal(k.pubsub("127").c_str(), "channel:{127}:pubsub");
  Keys app("app:x:");
  assert_string_equal(app.msg_id("thread.42").c_str(), "app:x:{thread.42}:msg_id");
  std::string c;
  assert_true(app.channel_of_pubsub(app.pubsub("thread.42"), &c));
  assert_string_equal(c.c_str(), "thread.42");
  assert_true(app.channel_of_pubsub("app:x:{a}:pubsub", &c));
  assert_string_equal(c.c_str(), "a");
  // Not a pub/sub name of this prefix: another prefix, another key, no braces, too short.
  for (const char* bad : {"channel:{a}:pubsub", "app:x:{a}:msg_id", "app:x:a:pubsub", "app:x:{a:pubsub",
                          "app:x:a}:pubsub", "app:x:{}:pubsub", "app:x:", ""}) {
    std::string out = "untouched";
    bool ok = app.channel_of_pubsub(bad, &out);
    if (std::string(bad) == "app:x:{}:pubsub") {
      // An empty name parses (the hub then finds no such channel).
      assert_true(ok);
      continue;
    }
    if (ok) fail_msg("accepted %s as %s", bad, out.c_str());
    assert_string_equal(out.c_str(), "untouched");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_channel_names),         cmocka_unit_test(test_ids),
      cmocka_unit_test(test_query_good),            cmocka_unit_test(test_query_bad),
      cmocka_unit_test(test_query_limit_exact),     cmocka_unit_test(test_query_build_roundtrip),
      cmocka_unit_test(test_messages),              cmocka_unit_test(test_decide_nothing_new),
      cmocka_unit_test(test_decide_ok),             cmocka_unit_test(test_decide_ok_cut_at_break),
      cmocka_unit_test(test_decide_reset_behind),   cmocka_unit_test(test_decide_reset_lost),
      cmocka_unit_test(test_build_response),
      cmocka_unit_test(test_parse_response_malformed),  cmocka_unit_test(test_parse_response_odd_payloads),
      cmocka_unit_test(test_error_body),            cmocka_unit_test(test_keys),
  };
  return cmocka_run_group_tests_name("protocol", tests, nullptr, nullptr);
}
