// Unit tests of server/src/mirror (the in-process mirror of a channel's head): the pure
// state machine, fed the way the hub feeds it (seed reply, pub/sub messages, verification
// replies) with time as an input. Every case is one ordering the real connections can
// produce; the integration tests (tests/integration/mirror.test.mjs) run it against Redis.
#include "cmocka_wrap.hpp"

#include "mirror.hpp"

namespace {

using rt::ChannelMirror;
using D = ChannelMirror::Decision;

rt::proto::Message msg(uint64_t id) {
  rt::proto::Message m;
  m.id = id;
  m.json = "{\"id\":" + std::to_string(id) + ",\"payload\":" + std::to_string(id * 10) + "}";
  return m;
}

D decide(ChannelMirror& mi, uint64_t last, uint64_t now, uint64_t* got = nullptr) {
  const rt::proto::Message* m = nullptr;
  D d = mi.decide(last, now, &m);
  if (got) *got = m ? m->id : 0;
  if (d == D::newest) assert_non_null(m);
  return d;
}

// Seeded at N = 5 with message 5 in the backlog.
ChannelMirror seeded(uint64_t now = 1000) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(now);
  rt::proto::Message m5 = msg(5);
  mi.seed_done(t, true, 5, &m5);
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
  assert_int_equal(decide(mi, 5, 1000), D::hold);
  assert_int_equal(decide(mi, 4, 1000, &got), D::newest);
  assert_int_equal(got, 5);
  // Two or more behind: only Redis knows whether 4 is still in the backlog.
  assert_int_equal(decide(mi, 3, 1000), D::unknown);
  assert_int_equal(decide(mi, 0, 1000), D::unknown);
  // Ahead: a reset, or a message whose pub/sub copy is not here yet: ask Redis.
  assert_int_equal(decide(mi, 6, 1000), D::unknown);
}

void test_seed_of_empty_channel(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.seed_done(t, true, 0, nullptr);
  assert_int_equal(decide(mi, 0, 0), D::hold);
  assert_int_equal(decide(mi, 1, 0), D::unknown);
  mi.on_message(msg(1));
  uint64_t got = 0;
  assert_int_equal(decide(mi, 0, 0, &got), D::newest);
  assert_int_equal(got, 1);
}

void test_seed_newest_not_n(void**) {
  // msg_id 7 but the backlog's newest is 6 (trimmed oddly, or written by another backend):
  // the mirror knows N but has no message to answer with.
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  rt::proto::Message m6 = msg(6);
  mi.seed_done(t, true, 7, &m6);
  assert_int_equal(decide(mi, 7, 0), D::hold);
  assert_int_equal(decide(mi, 6, 0), D::unknown);
}

void test_pubsub_extends_only_contiguously(void**) {
  ChannelMirror mi = seeded();
  mi.on_message(msg(6));
  uint64_t got = 0;
  assert_int_equal(decide(mi, 5, 1000, &got), D::newest);
  assert_int_equal(got, 6);
  assert_int_equal(decide(mi, 6, 1000), D::hold);
  // After a new message only that message is certainly still in Redis (backlog may be 1).
  assert_int_equal(decide(mi, 4, 1000), D::unknown);
  mi.on_message(msg(8));  // 7 missing: dropped
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  assert_int_equal(decide(mi, 8, 1000), D::unknown);
}

void test_id_going_back_drops(void**) {
  ChannelMirror mi = seeded();
  mi.on_message(msg(6));
  mi.on_message(msg(1));  // FLUSHALL, then a publish: ids start again
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
}

void test_late_copies_after_seed_are_ignored(void**) {
  // 4 and 5 were published before the seed read ran, but their pub/sub copies arrive after
  // its reply (two sockets): they are already counted, not a gap.
  ChannelMirror mi = seeded();
  mi.on_message(msg(4));
  mi.on_message(msg(5));
  assert_int_equal(mi.state(), ChannelMirror::State::valid);
  assert_int_equal(decide(mi, 5, 1000), D::hold);
  mi.on_message(msg(6));
  // Once a newer message came, an old id can only mean the ids went back.
  mi.on_message(msg(5));
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
}

void test_messages_during_seed_are_applied(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.on_message(msg(5));  // published before the read ran (counted by it)
  mi.on_message(msg(6));  // after
  mi.on_message(msg(7));
  rt::proto::Message m5 = msg(5);
  mi.seed_done(t, true, 5, &m5);
  uint64_t got = 0;
  assert_int_equal(decide(mi, 6, 0, &got), D::newest);
  assert_int_equal(got, 7);
  assert_int_equal(decide(mi, 7, 0), D::hold);
}

void test_gap_during_seed_drops(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.on_message(msg(7));  // 6 never came
  rt::proto::Message m5 = msg(5);
  mi.seed_done(t, true, 5, &m5);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
}

void test_seed_buffer_overflow_drops(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  for (uint64_t id = 6; id < 6 + ChannelMirror::kMaxSeedBuffer + 1; id++) mi.on_message(msg(id));
  rt::proto::Message m5 = msg(5);
  mi.seed_done(t, true, 5, &m5);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
}

void test_failed_or_stale_seed(void**) {
  ChannelMirror mi;
  uint64_t t = mi.begin_seed(0);
  mi.seed_done(t, false, 0, nullptr);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  uint64_t t1 = mi.begin_seed(0);
  mi.drop();  // unsubscribed while the read was in flight
  rt::proto::Message m5 = msg(5);
  mi.seed_done(t1, true, 5, &m5);
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  uint64_t t2 = mi.begin_seed(0);
  uint64_t t3 = mi.begin_seed(0);  // re-seeded: the first reply is stale
  mi.seed_done(t2, true, 5, &m5);
  assert_int_equal(mi.state(), ChannelMirror::State::seeding);
  mi.seed_done(t3, true, 5, &m5);
  assert_int_equal(mi.state(), ChannelMirror::State::valid);
}

void test_trust_expires_without_verification(void**) {
  ChannelMirror mi = seeded(1000);
  assert_int_equal(decide(mi, 5, 1000 + ChannelMirror::kTrustMs), D::hold);
  assert_int_equal(decide(mi, 5, 1001 + ChannelMirror::kTrustMs), D::unknown);
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
  assert_int_equal(n_sent, 5);
  assert_false(mi.wants_verify(now + 5000, true));  // one in flight at a time
  mi.on_message(msg(6));                           // published meanwhile: Redis says 6
  assert_false(mi.verify_done(t, true, n_sent, 6));
  assert_int_equal(decide(mi, 6, now + ChannelMirror::kTrustMs), D::hold);
  assert_int_equal(decide(mi, 6, now + ChannelMirror::kTrustMs + 1), D::unknown);
}

void test_verification_finds_history_lost(void**) {
  ChannelMirror mi = seeded(1000);
  uint64_t n_sent = 0;
  uint64_t t = mi.begin_verify(2000, &n_sent);
  assert_true(mi.verify_done(t, true, n_sent, 0));  // keys deleted: msg_id gone
  assert_int_equal(mi.state(), ChannelMirror::State::empty);
  assert_int_equal(decide(mi, 5, 2000), D::unknown);
}

void test_failed_or_stale_verification(void**) {
  ChannelMirror mi = seeded(1000);
  uint64_t n_sent = 0;
  uint64_t t = mi.begin_verify(2000, &n_sent);
  assert_false(mi.verify_done(t, false, n_sent, 0));  // Redis error: not a loss, but untrusted
  assert_int_equal(mi.state(), ChannelMirror::State::empty);

  ChannelMirror m2 = seeded(1000);
  uint64_t t2 = m2.begin_verify(2000, &n_sent);
  m2.on_message(msg(9));  // gap: dropped, then seeded again
  uint64_t s = m2.begin_seed(2100);
  rt::proto::Message m9 = msg(9);
  m2.seed_done(s, true, 9, &m9);
  assert_false(m2.verify_done(t2, true, 5, 0));  // the old GET's answer means nothing now
  assert_int_equal(m2.state(), ChannelMirror::State::valid);
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_decides_nothing),
      cmocka_unit_test(test_seeded_decisions),
      cmocka_unit_test(test_seed_of_empty_channel),
      cmocka_unit_test(test_seed_newest_not_n),
      cmocka_unit_test(test_pubsub_extends_only_contiguously),
      cmocka_unit_test(test_id_going_back_drops),
      cmocka_unit_test(test_late_copies_after_seed_are_ignored),
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
