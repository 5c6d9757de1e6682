// Unit tests of server/src/mirror (the in-process mirror of a channel's head): the pure
// state machine, fed the way the hub feeds it (seed reply, pub/sub messages, verification
// replies) with time as an input. Every case is one ordering the real connections can
// produce; the integration tests (tests/integration/mirror.test.mjs) run it against Redis.
#include "cmocka_wrap.hpp"

#include "mirror.hpp"

namespace {

using rt::ChannelMirror;
using D = ChannelMirror::Decision;

// Version-2 ids are not dense (max(N + 1, Redis TIME in us)): the tests use ids 10 apart,
// message k of a channel's history has id 10 * k and prev 10 * (k - 1).
rt::proto::Message msg(uint64_t id, uint64_t prev) {
  rt::proto::Message m;
  m.id = id;
  m.prev = prev;
  m.json = "{\"id\":" + std::to_string(id) + ",\"prev\":" + std::to_string(prev) + ",\"payload\":" +
           std::to_string(id * 10) + "}";
  return m;
}
rt::proto::Message msg(uint64_t id) { return msg(id, id >= 10 ? id - 10 : 0); }

D decide(ChannelMirror& mi, uint64_t last, uint64_t now, uint64_t* got = nullptr) {
  const rt::proto::Message* m = nullptr;
  D d = mi.decide(last, now, &m);
  if (got) *got = m ? m->id : 0;
  if (d == D::newest) assert_non_null(m);
  return d;
}

// Seeded at N = 50 with message 50 (prev 40) in the backlog.
ChannelMirror seeded(uint64_t now = 1000) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(now);
  rt::proto::Message m50 = msg(50);
  mi.seed_done(t, true, 50, &m50);
  return mi;
}

void test_empty_decides_nothing(void**) {
  ChannelMirror mi;
  assert_int_equal(decide(mi, 0, 0), D::unknown);
  uint64_t t = mi.begin_seed(0);
  (void)t;
  assert_int_equal(decide(mi, 0, 0), D::unknown);  // seeding: not yet
}

void test_seeded_decisions(void**) {
  ChannelMirror mi = seeded();
  uint64_t got = 0;
  assert_int_equal(decide(mi, 50, 1000), D::hold);
  assert_int_equal(decide(mi, 40, 1000, &got), D::newest);  // L == newest.prev
  assert_int_equal(got, 50);
  // Not the newest message's predecessor: 49 was never issued (id arithmetic would call it
  // "one behind"), 45 lies inside the span, 30 is further back: only Redis knows.
  assert_int_equal(decide(mi, 49, 1000), D::unknown);
  assert_int_equal(decide(mi, 45, 1000), D::unknown);
  assert_int_equal(decide(mi, 30, 1000), D::unknown);
  assert_int_equal(decide(mi, 0, 1000), D::unknown);
  // Ahead: a reset, or a message whose pub/sub copy is not here yet: ask Redis.
  assert_int_equal(decide(mi, 51, 1000), D::unknown);
  assert_int_equal(decide(mi, 60, 1000), D::unknown);
}

void test_seed_of_empty_channel(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.seed_done(t, true, 0, nullptr);
  assert_int_equal(decide(mi, 0, 0), D::hold);
  assert_int_equal(decide(mi, 10, 0), D::unknown);
  mi.on_message(msg(1764612345678901, 0));  // the channel's first message: prev 0
  uint64_t got = 0;
  assert_int_equal(decide(mi, 0, 0, &got), D::newest);
  assert_int_equal(got, 1764612345678901);
  assert_int_equal(decide(mi, 1764612345678901, 0), D::hold);
}

void test_seed_newest_not_n(void**) {
  // msg_id 70 but the backlog's newest is 60 (trimmed oddly, or written by another
  // backend): the mirror knows N but has no message to answer with.
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  rt::proto::Message m60 = msg(60);
  mi.seed_done(t, true, 70, &m60);
  assert_int_equal(decide(mi, 70, 0), D::hold);
  assert_int_equal(decide(mi, 60, 0), D::unknown);
  assert_int_equal(decide(mi, 50, 0), D::unknown);
}

void test_pubsub_extends_only_by_prev(void**) {
  ChannelMirror mi = seeded();
  mi.on_message(msg(57, 50));  // not dense: 57 follows 50 because its prev says so
  uint64_t got = 0;
  assert_int_equal(decide(mi, 50, 1000, &got), D::newest);
  assert_int_equal(got, 57);
  assert_int_equal(decide(mi, 57, 1000), D::hold);
  // After a new message only that message is certainly still in Redis (backlog may be 1).
  assert_int_equal(decide(mi, 40, 1000), D::unknown);
  mi.on_message(msg(80, 70));  // 70 missing: dropped
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  assert_int_equal(decide(mi, 80, 1000), D::unknown);
}

void test_id_plus_one_with_foreign_prev_drops(void**) {
  // The version-1 rule (id == N + 1) would take this one: its prev says it follows 30, not
  // 50 (another history: written after a rollback, or by a stray writer).
  ChannelMirror mi = seeded();
  mi.on_message(msg(51, 30));
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
}

void test_new_history_drops(void**) {
  // FLUSHALL (or keys expired), then a publish: the new id is above every old one, but its
  // prev is 0, not N.
  ChannelMirror mi = seeded();
  mi.on_message(msg(60));
  mi.on_message(msg(1000, 0));
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  // A rollback to an older snapshot: the next id continues an older N.
  ChannelMirror m2 = seeded();
  m2.on_message(msg(60));
  m2.on_message(msg(70, 40));
  assert_int_equal(m2.state(), ChannelMirror::State::empty);
}

void test_version1_messages_extend(void**) {
  // A version-1 writer's message has no prev: it counts as id - 1.
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  rt::proto::Message v1_5 = msg(5, 4);
  mi.seed_done(t, true, 5, &v1_5);
  mi.on_message(msg(6, 5));
  uint64_t got = 0;
  assert_int_equal(decide(mi, 5, 0, &got), D::newest);
  assert_int_equal(got, 6);
  mi.on_message(msg(1764612345678901, 6));  // the next version-2 publish links to N = 6
  assert_int_equal(decide(mi, 6, 0, &got), D::newest);
  assert_int_equal(got, 1764612345678901);
}

void test_old_ids_after_seed_drop(void**) {
  // A copy of 50 arriving after the seed's reply (published before the read ran, delivered
  // late on the other socket) does not name N as its prev: only Redis can tell what it is,
  // so the mirror is dropped, as for an older message.
  ChannelMirror mi = seeded();
  mi.on_message(msg(50));
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  ChannelMirror m2 = seeded();
  m2.on_message(msg(10));
  assert_int_equal(m2.state(), ChannelMirror::State::empty);
}

void test_messages_during_seed_are_applied(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.on_message(msg(50));  // published before the read ran (counted by it)
  mi.on_message(msg(60));  // after
  mi.on_message(msg(70));
  rt::proto::Message m50 = msg(50);
  mi.seed_done(t, true, 50, &m50);
  uint64_t got = 0;
  assert_int_equal(decide(mi, 60, 0, &got), D::newest);
  assert_int_equal(got, 70);
  assert_int_equal(decide(mi, 70, 0), D::hold);
}

void test_gap_during_seed_drops(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.on_message(msg(70));  // 60 never came
  rt::proto::Message m50 = msg(50);
  mi.seed_done(t, true, 50, &m50);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
}

void test_seed_buffer_overflow_drops(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  for (uint64_t k = 6; k < 6 + ChannelMirror::kMaxSeedBuffer + 1; k++) mi.on_message(msg(10 * k));
  rt::proto::Message m50 = msg(50);
  mi.seed_done(t, true, 50, &m50);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
}

void test_failed_or_stale_seed(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.seed_done(t, false, 0, nullptr);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  uint64_t t1 = mi.begin_seed(0);
  mi.drop();  // unsubscribed while the read was in flight
  rt::proto::Message m50 = msg(50);
  mi.seed_done(t1, true, 50, &m50);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  uint64_t t2 = mi.begin_seed(0);
  uint64_t t3 = mi.begin_seed(0);  // re-seeded: the first reply is stale
  mi.seed_done(t2, true, 50, &m50);
  assert_int_equal(mi.state(), ChannelMirror::State::seeding);
  mi.seed_done(t3, true, 50, &m50);
  assert_int_equal(mi.state(), ChannelMirror::State::valid);
}

void test_trust_expires_without_verification(void**) {
  ChannelMirror mi = seeded(1000);
  assert_int_equal(decide(mi, 50, 1000 + ChannelMirror::kTrustMs), D::hold);
  assert_int_equal(decide(mi, 50, 1001 + ChannelMirror::kTrustMs), D::unknown);
  assert_true(mi.stale(1001 + ChannelMirror::kTrustMs));
}

void test_verification_renews_trust_from_its_send_time(void**) {
  ChannelMirror mi = seeded(1000);
  uint64_t now = 1000 + ChannelMirror::kVerifyAfterMs;
  assert_false(mi.wants_verify(now - 1, true));
  assert_false(mi.wants_verify(now, false));  // nobody used it: no GET for idle channels
  assert_true(mi.wants_verify(now, true));
  uint64_t n_sent = 0;
  uint64_t t = mi.begin_verify(now, &n_sent);
  assert_int_equal(n_sent, 50);
  assert_false(mi.wants_verify(now + 5000, true));  // one in flight at a time
  mi.on_message(msg(60));                          // published meanwhile: Redis says 60
  assert_false(mi.verify_done(t, true, n_sent, 60));
  assert_int_equal(decide(mi, 60, now + ChannelMirror::kTrustMs), D::hold);
  assert_int_equal(decide(mi, 60, now + ChannelMirror::kTrustMs + 1), D::unknown);
}

void test_verification_finds_history_lost(void**) {
  ChannelMirror mi = seeded(1000);
  uint64_t n_sent = 0;
  uint64_t t = mi.begin_verify(2000, &n_sent);
  assert_true(mi.verify_done(t, true, n_sent, 0));  // keys deleted: msg_id gone
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  assert_int_equal(decide(mi, 50, 2000), D::unknown);
}

void test_failed_or_stale_verification(void**) {
  ChannelMirror mi = seeded(1000);
  uint64_t n_sent = 0;
  uint64_t t = mi.begin_verify(2000, &n_sent);
  assert_false(mi.verify_done(t, false, n_sent, 0));  // Redis error: not a loss, but untrusted
  assert_int_equal(mi.state(), ChannelMirror::State::empty);

  ChannelMirror m2 = seeded(1000);
  uint64_t t2 = m2.begin_verify(2000, &n_sent);
  m2.on_message(msg(90));  // gap: dropped, then seeded again
  uint64_t s = m2.begin_seed(2100);
  rt::proto::Message m90 = msg(90);
  m2.seed_done(s, true, 90, &m90);
  assert_false(m2.verify_done(t2, true, 50, 0));  // the old GET's answer means nothing now
  assert_int_equal(m2.state(), ChannelMirror::State::valid);
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_decides_nothing),
      cmocka_unit_test(test_seeded_decisions),
      cmocka_unit_test(test_seed_of_empty_channel),
      cmocka_unit_test(test_seed_newest_not_n),
      cmocka_unit_test(test_pubsub_extends_only_by_prev),
      cmocka_unit_test(test_id_plus_one_with_foreign_prev_drops),
      cmocka_unit_test(test_new_history_drops),
      cmocka_unit_test(test_version1_messages_extend),
      cmocka_unit_test(test_old_ids_after_seed_drop),
      cmocka_unit_test(test_messages_during_seed_are_applied),
      cmocka_unit_test(test_gap_during_seed_drops),
      cmocka_unit_test(test_seed_buffer_overflow_drops),
      cmocka_unit_test(test_failed_or_stale_seed),
      cmocka_unit_test(test_trust_expires_without_verification),
      cmocka_unit_test(test_verification_renews_trust_from_its_send_time),
      cmocka_unit_test(test_verification_finds_history_lost),
      cmocka_unit_test(test_failed_or_stale_verification),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
