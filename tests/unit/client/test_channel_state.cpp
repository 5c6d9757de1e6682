// Per-channel last ids: dedupe, order, resets, unwanted channels, ids the page supplies.
#include "test_support.hpp"

#include "channel_state.hpp"

using namespace rt::client;
using rt::proto::EntryStatus;
using rt::proto::ReceivedEntry;
using rt::proto::ReceivedMessage;

static ReceivedEntry ok_entry(const std::string& c, std::vector<uint64_t> ids) {
  ReceivedEntry e;
  e.channel = c;
  e.status = EntryStatus::ok;
  for (uint64_t id : ids) e.msgs.push_back(ReceivedMessage{id, id - 1, "{\"n\":" + std::to_string(id) + "}"});
  return e;
}

static std::vector<uint64_t> ids_of(const Actions& out) {
  std::vector<uint64_t> v;
  for (const Action& a : out) v.push_back(a.id);
  return v;
}

static void test_dedupe_and_order(void** state) {
  (void)state;
  ChannelTable t;
  t.get("a").subscribers = 1;
  Actions out;
  t.apply(ok_entry("a", {1, 2, 3}), &out);
  t.apply(ok_entry("a", {2, 3, 4}), &out);  // a repeat (e.g. answered twice) overlaps
  t.apply(ok_entry("a", {1}), &out);        // an old one
  t.apply(ok_entry("a", {5, 6}), &out);
  assert_true((ids_of(out) == std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  for (const Action& a : out) {
    assert_int_equal(static_cast<int>(a.kind), static_cast<int>(ActionKind::message));
    assert_string_equal(a.channel.c_str(), "a");
    assert_string_equal(a.payload_json.c_str(), ("{\"n\":" + std::to_string(a.id) + "}").c_str());
  }
  assert_int_equal(t.find("a")->last_id, 6);
}

static void test_page_supplied_last_id(void** state) {
  (void)state;
  ChannelTable t;
  t.note_seen("a", 17);
  t.note_seen("a", 9);  // lower: ignored
  t.get("a").subscribers = 1;
  Actions out;
  t.apply(ok_entry("a", {16, 17, 18}), &out);
  assert_true((ids_of(out) == std::vector<uint64_t>{18}));
}

static void test_reset_with_newest(void** state) {
  (void)state;
  ChannelTable t;
  t.get("s").scroll = true;
  t.note_seen("s", 3);
  ReceivedEntry e;
  e.channel = "s";
  e.status = EntryStatus::reset;
  e.id = 70;
  e.msgs.push_back(ReceivedMessage{70, 69, "[1,2]"});
  Actions out;
  t.apply(e, &out);
  assert_int_equal(out.size(), 1);
  assert_int_equal(static_cast<int>(out[0].kind), static_cast<int>(ActionKind::reset));
  assert_int_equal(out[0].id, 70);
  assert_true(out[0].has_newest);
  assert_int_equal(out[0].newest_id, 70);
  assert_string_equal(out[0].payload_json.c_str(), "[1,2]");
  assert_int_equal(out[0].targets, kToScroll);
  assert_int_equal(t.find("s")->last_id, 70);
  out.clear();
  t.apply(ok_entry("s", {70, 71}), &out);  // resumes after the reset id
  assert_true((ids_of(out) == std::vector<uint64_t>{71}));
}

static void test_reset_without_newest_and_history_lost(void** state) {
  (void)state;
  ChannelTable t;
  t.get("a").subscribers = 2;
  t.note_seen("a", 500);
  ReceivedEntry e;
  e.channel = "a";
  e.status = EntryStatus::reset;
  e.id = 0;  // Redis flushed: the channel starts over
  Actions out;
  t.apply(e, &out);
  assert_int_equal(out.size(), 1);
  assert_false(out[0].has_newest);
  assert_int_equal(out[0].targets, kToSubscribers);
  assert_int_equal(t.find("a")->last_id, 0);
  out.clear();
  t.apply(ok_entry("a", {1, 2}), &out);  // new history is delivered, not dropped as "old"
  assert_true((ids_of(out) == std::vector<uint64_t>{1, 2}));
}

// Version-2 ids are not dense: a chain links each message to the one before by `prev`.
static ReceivedEntry chain_entry(const std::string& c, std::vector<std::pair<uint64_t, uint64_t>> id_prev) {
  ReceivedEntry e;
  e.channel = c;
  e.status = EntryStatus::ok;
  for (auto [id, prev] : id_prev) e.msgs.push_back(ReceivedMessage{id, prev, "{\"n\":" + std::to_string(id) + "}"});
  return e;
}

static void test_chain_sparse_ids_delivered(void** state) {
  (void)state;
  ChannelTable t;
  t.get("a").subscribers = 1;
  t.note_seen("a", 1000);
  Actions out;
  t.apply(chain_entry("a", {{1500, 1000}, {1731, 1500}, {9000, 1731}}), &out);
  t.apply(chain_entry("a", {{1731, 1500}, {9000, 1731}, {9001, 9000}}), &out);  // overlap: deduped, chain holds
  assert_true((ids_of(out) == std::vector<uint64_t>{1500, 1731, 9000, 9001}));
  assert_int_equal(t.find("a")->last_id, 9001);
}

// The first new message does not link to the last id: a lost reset to the list's newest,
// nothing of the list delivered as if nothing had happened.
static void test_chain_break_at_first_is_lost_reset(void** state) {
  (void)state;
  ChannelTable t;
  t.get("a").subscribers = 1;
  t.note_seen("a", 1000);
  Actions out;
  t.apply(chain_entry("a", {{1600, 1500}, {1700, 1600}}), &out);  // 1500 is missing
  assert_int_equal(out.size(), 1);
  assert_int_equal(static_cast<int>(out[0].kind), static_cast<int>(ActionKind::reset));
  assert_int_equal(static_cast<int>(out[0].reason), static_cast<int>(rt::proto::ResetReason::lost));
  assert_int_equal(out[0].id, 1700);
  assert_true(out[0].has_newest);
  assert_int_equal(out[0].newest_id, 1700);
  assert_string_equal(out[0].payload_json.c_str(), "{\"n\":1700}");
  assert_int_equal(t.find("a")->last_id, 1700);
  out.clear();
  t.apply(chain_entry("a", {{1800, 1700}}), &out);  // resumes from the reset
  assert_true((ids_of(out) == std::vector<uint64_t>{1800}));
}

// A break inside the list: the linked prefix is delivered, then the reset.
static void test_chain_break_inside_list(void** state) {
  (void)state;
  ChannelTable t;
  t.get("a").subscribers = 1;
  t.note_seen("a", 10);
  Actions out;
  t.apply(chain_entry("a", {{11, 10}, {12, 11}, {20, 15}, {21, 20}}), &out);
  assert_int_equal(out.size(), 3);
  assert_true((ids_of(out) == std::vector<uint64_t>{11, 12, 21}));
  assert_int_equal(static_cast<int>(out[0].kind), static_cast<int>(ActionKind::message));
  assert_int_equal(static_cast<int>(out[1].kind), static_cast<int>(ActionKind::message));
  assert_int_equal(static_cast<int>(out[2].kind), static_cast<int>(ActionKind::reset));
  assert_int_equal(static_cast<int>(out[2].reason), static_cast<int>(rt::proto::ResetReason::lost));
  assert_int_equal(out[2].newest_id, 21);
  assert_int_equal(t.find("a")->last_id, 21);
}

// The server's reason reaches the reset action.
static void test_reset_reason_passed_on(void** state) {
  (void)state;
  ChannelTable t;
  t.get("a").subscribers = 1;
  ReceivedEntry e;
  e.channel = "a";
  e.status = EntryStatus::reset;
  e.id = 99;
  e.reason = rt::proto::ResetReason::behind;
  Actions out;
  t.apply(e, &out);
  assert_int_equal(out.size(), 1);
  assert_int_equal(static_cast<int>(out[0].reason), static_cast<int>(rt::proto::ResetReason::behind));
  e.reason = rt::proto::ResetReason::lost;
  e.id = 120;
  t.apply(e, &out);
  assert_int_equal(static_cast<int>(out[1].reason), static_cast<int>(rt::proto::ResetReason::lost));
}

static void test_unwanted_channels_do_not_advance(void** state) {
  (void)state;
  ChannelTable t;
  t.note_seen("gone", 4);  // known, nobody wants it
  Actions out;
  t.apply(ok_entry("gone", {5, 6}), &out);
  t.apply(ok_entry("never-seen", {1}), &out);
  assert_true(out.empty());
  assert_int_equal(t.find("gone")->last_id, 4);
  assert_null(t.find("never-seen"));
}

static void test_wanted_list_and_targets(void** state) {
  (void)state;
  ChannelTable t;
  t.get("b").subscribers = 1;
  t.get("a").scroll = true;
  t.get("c");
  ChannelInfo& both = t.get("d");
  both.subscribers = 1;
  both.scroll = true;
  assert_int_equal(both.targets(), kToSubscribers | kToScroll);
  auto w = t.wanted();
  assert_int_equal(w.size(), 3);
  assert_string_equal(w[0].channel.c_str(), "a");
  assert_string_equal(w[1].channel.c_str(), "b");
  assert_string_equal(w[2].channel.c_str(), "d");
  assert_true((t.scroll_names() == std::vector<std::string>{"a", "d"}));
  assert_true((t.clear_scroll() == std::vector<std::string>{"a", "d"}));
  assert_true(t.scroll_names().empty());
  assert_int_equal(t.wanted().size(), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dedupe_and_order),
      cmocka_unit_test(test_page_supplied_last_id),
      cmocka_unit_test(test_reset_with_newest),
      cmocka_unit_test(test_reset_without_newest_and_history_lost),
      cmocka_unit_test(test_chain_sparse_ids_delivered),
      cmocka_unit_test(test_chain_break_at_first_is_lost_reset),
      cmocka_unit_test(test_chain_break_inside_list),
      cmocka_unit_test(test_reset_reason_passed_on),
      cmocka_unit_test(test_unwanted_channels_do_not_advance),
      cmocka_unit_test(test_wanted_list_and_targets),
  };
  return cmocka_run_group_tests_name("client channel_state", tests, nullptr, nullptr);
}
