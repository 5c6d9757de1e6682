// Unit tests of server/src/channels/poll_core (the rules of one /rt poll, without I/O):
// a host that feeds simulated events (subscribe confirmations, per-channel read results in
// any order, pub/sub messages, Redis heads, fences, the timeout, the client going away, the
// hub lost) and checks the actions that come back, the answers' bodies included. The mirror
// decisions come from a table. The integration tests (tests/integration/poll, mirror, drops,
// history) run the same rules through poll.cpp against Redis.
#include "cmocka_wrap.hpp"

#include <functional>
#include <memory>

#include "poll_core.hpp"

namespace {

using rt::ChannelReadResult;
using rt::PollCore;
using K = PollCore::ActionKind;
using D = PollCore::Decision;
namespace proto = rt::proto;

// Message k of a channel: ids 10 apart (version-2 ids are not dense), prev the id before.
proto::Message msg(uint64_t id, uint64_t prev, size_t pad = 0) {
  proto::Message m;
  m.id = id;
  m.prev = prev;
  m.json = "{\"id\":" + std::to_string(id) + ",\"prev\":" + std::to_string(prev) + ",\"payload\":\"" +
           std::string(pad, 'x') + "\"}";
  return m;
}
proto::Message msg(uint64_t id) { return msg(id, id >= 10 ? id - 10 : 0); }

// The mirrors as a table: unknown unless a test says otherwise.
class View final : public PollCore::ChannelView {
 public:
  explicit View(std::vector<std::string> names)
      : names_(std::move(names)), d_(names_.size(), D::unknown), newest_(names_.size()) {}
  const std::string& channel(size_t idx) const noexcept override { return names_[idx]; }
  D decide(size_t idx, uint64_t, const proto::Message** m) noexcept override {
    decides++;
    if (d_[idx] == D::newest) *m = &newest_[idx];
    return d_[idx];
  }
  void set(size_t idx, D d, proto::Message newest = proto::Message()) {
    d_[idx] = d;
    newest_[idx] = std::move(newest);
  }
  int decides = 0;

 private:
  std::vector<std::string> names_;
  std::vector<D> d_;
  std::vector<proto::Message> newest_;
};

// The host: carries out nothing, records everything; a wake runs the step right away.
struct Host {
  Host(std::vector<std::string> names, std::vector<uint64_t> lasts) : view(names) {
    for (size_t i = 0; i < names.size(); i++) pos.push_back({names[i], lasts[i]});
    core = std::make_unique<PollCore>(pos, view, 30000);
  }
  // Feeds one event, then runs the step as long as it asks for one; returns every action.
  PollCore::Actions feed(const std::function<void(PollCore::Actions&)>& event) {
    PollCore::Actions got, out;
    event(out);
    for (int guard = 0; guard < 20; guard++) {
      bool wake = false;
      for (PollCore::Action& a : out) {
        if (a.kind == K::wake) wake = true;
        if (a.kind == K::free) frees++;
        got.push_back(std::move(a));
      }
      out.clear();
      if (!wake) break;
      core->run(out);
    }
    return got;
  }
  // start, then every channel confirmed (as Hub::add answering "confirmed")
  PollCore::Actions start_confirmed() {
    PollCore::Actions got = feed([&](PollCore::Actions& out) {
      core->start(out);
      for (size_t i = 0; i < pos.size(); i++) core->on_subscribed(i, out);
    });
    return got;
  }
  PollCore::Actions read_result(size_t idx, ChannelReadResult r) {
    return feed([&](PollCore::Actions& out) { core->on_read_result(idx, std::move(r), out); });
  }
  PollCore::Actions message(size_t idx, const proto::Message& m) {
    auto owner = std::make_shared<proto::Message>(m);
    owners.push_back(owner);
    return feed([&](PollCore::Actions& out) { core->on_message(idx, owner, *owner, out); });
  }
  PollCore::Actions run() {
    return feed([&](PollCore::Actions& out) { out.emplace_back(); });  // a wake from the host
  }

  View view;
  std::vector<proto::ChannelPos> pos;
  std::unique_ptr<PollCore> core;
  std::vector<std::shared_ptr<proto::Message>> owners;
  int frees = 0;
};

const PollCore::Action* find(const PollCore::Actions& as, K kind) {
  for (const PollCore::Action& a : as)
    if (a.kind == kind) return &a;
  return nullptr;
}
int count(const PollCore::Actions& as, K kind) {
  int n = 0;
  for (const PollCore::Action& a : as) n += a.kind == kind;
  return n;
}
bool answered(const PollCore::Actions& as) {
  return find(as, K::answer) || find(as, K::answer_single) || find(as, K::fail) || find(as, K::drop);
}

ChannelReadResult ok(uint64_t n, std::vector<proto::Message> after = {}, const proto::Message* tail = nullptr) {
  ChannelReadResult r;
  r.ok = true;
  r.newest = n;
  if (tail) {
    r.tail = *tail;
    r.has_tail = true;
  } else if (!after.empty()) {
    r.tail = after.back();
    r.has_tail = true;
  }
  r.after = std::move(after);
  return r;
}
ChannelReadResult failed(const char* why) {
  ChannelReadResult r;
  r.error = why;
  return r;
}

// The body of an answer, parsed as the client would.
std::vector<proto::ReceivedEntry> body_of(const PollCore::Action* a) {
  assert_non_null(a);
  std::vector<proto::ReceivedEntry> e;
  std::string detail;
  if (!proto::parse_response(a->body, &e, &detail)) fail_msg("bad body: %s", detail.c_str());
  return e;
}
std::vector<uint64_t> ids(const proto::ReceivedEntry& e) {
  std::vector<uint64_t> v;
  for (const auto& m : e.msgs) v.push_back(m.id);
  return v;
}
using Ids = std::vector<uint64_t>;

// Ends cleanly: left the hub, stopped the timer, freed exactly once.
void assert_closed(const Host& h, const PollCore::Actions& as) {
  assert_int_equal(count(as, K::unsubscribe), 1);
  assert_int_equal(count(as, K::stop_timer), 1);
  assert_int_equal(h.frees, 1);
  assert_int_equal(h.core->state(), PollCore::State::freed);
}

// --- subscribing, reading, answering --------------------------------------------------------

void test_start_subscribes_then_reads(void**) {
  Host h({"a", "b"}, {0, 0});
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->start(out); });
  assert_non_null(find(as, K::subscribe));
  const PollCore::Action* t = find(as, K::arm_timer);
  assert_non_null(t);
  assert_int_equal(t->delay_ms, 30000);
  assert_null(find(as, K::read));  // not before every SUBSCRIBE is confirmed
  as = h.feed([&](PollCore::Actions& out) { h.core->on_subscribed(1, out); });
  as = h.feed([&](PollCore::Actions& out) { h.core->on_subscribed(1, out); });  // a repeat counts once
  assert_null(find(as, K::read));
  as = h.feed([&](PollCore::Actions& out) { h.core->on_subscribed(0, out); });
  const PollCore::Action* r = find(as, K::read);
  assert_non_null(r);
  assert_true(r->channels == std::vector<uint32_t>({0, 1}));
  assert_int_equal(h.core->state(), PollCore::State::reading);
}

void test_ok_answer_from_read(void**) {
  Host h({"a"}, {0});
  h.start_confirmed();
  PollCore::Actions as = h.read_result(0, ok(20, {msg(10, 0), msg(20, 10)}));
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 1);
  assert_int_equal(int(e[0].status), int(proto::EntryStatus::ok));
  assert_true(ids(e[0]) == Ids({10, 20}));
  assert_int_equal(find(as, K::answer)->delivered, 2);
  assert_closed(h, as);
  assert_int_equal(h.core->take_counts().backlog_reads, 1);
}

void test_ok_cut_at_first_break(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  // 40 names 35 as its prev (a message missing from the chain): stop before it.
  PollCore::Actions as = h.read_result(0, ok(50, {msg(20, 10), msg(30, 20), msg(40, 35), msg(50, 40)}));
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 1);
  assert_int_equal(int(e[0].status), int(proto::EntryStatus::ok));
  assert_true(ids(e[0]) == Ids({20, 30}));
}

void test_resets_behind_and_lost(void**) {
  Host h({"behind", "lost", "ahead"}, {10, 25, 900});
  h.start_confirmed();
  // behind: the oldest message still linked to names 40, the client is at 10;
  // lost: 25 is not in the history (30's prev is 20); ahead: L > N.
  h.read_result(0, ok(60, {msg(50, 40), msg(60, 50)}));
  proto::Message m60 = msg(60);
  h.read_result(1, ok(60, {msg(30, 20), msg(40, 30)}, &m60));
  PollCore::Actions as = h.read_result(2, ok(100, {}, &m60));
  const PollCore::Action* a = find(as, K::answer);
  auto e = body_of(a);
  assert_int_equal(e.size(), 3);
  assert_int_equal(int(e[0].status), int(proto::EntryStatus::reset));
  assert_int_equal(int(e[0].reason), int(proto::ResetReason::behind));
  assert_int_equal(e[0].id, 60);
  assert_true(ids(e[0]) == Ids({60}));
  assert_int_equal(int(e[1].reason), int(proto::ResetReason::lost));
  assert_true(ids(e[1]) == Ids({60}));  // the newest message, not the cut-off `after`
  assert_int_equal(int(e[2].reason), int(proto::ResetReason::lost));
  assert_int_equal(e[2].id, 100);
  assert_int_equal(a->resets_behind, 1);
  assert_int_equal(a->resets_lost, 2);
}

void test_multi_channel_partial_answer(void**) {
  Host h({"news", "same", "reset"}, {10, 30, 5});
  h.start_confirmed();
  h.read_result(0, ok(20, {msg(20, 10)}));
  h.read_result(1, ok(30));  // N == L: no entry
  PollCore::Actions as = h.read_result(2, ok(40, {msg(30, 20), msg(40, 30)}));
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 2);
  assert_string_equal(e[0].channel.c_str(), "news");
  assert_string_equal(e[1].channel.c_str(), "reset");
  assert_int_equal(find(as, K::answer)->entries, 2);
}

void test_out_of_order_results(void**) {
  Host h({"a", "b", "c"}, {0, 0, 0});
  h.start_confirmed();
  PollCore::Actions as = h.read_result(2, ok(7, {msg(7, 0)}));
  assert_false(answered(as));
  as = h.read_result(0, ok(5, {msg(5, 0)}));
  assert_false(answered(as));
  as = h.read_result(2, ok(99, {msg(99, 0)}));  // a second result for c: not asked for, ignored
  assert_false(answered(as));
  as = h.read_result(1, ok(6, {msg(6, 0)}));
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 3);  // in the poll's channel order, each with its own result
  assert_true(ids(e[0]) == Ids({5}));
  assert_true(ids(e[1]) == Ids({6}));
  assert_true(ids(e[2]) == Ids({7}));
}

// --- held polls -----------------------------------------------------------------------------

void test_hold_then_pubsub_fanout(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  PollCore::Actions as = h.read_result(0, ok(10));
  assert_non_null(find(as, K::hold));
  assert_false(answered(as));
  assert_int_equal(h.core->state(), PollCore::State::held);
  as = h.message(0, msg(10, 0));  // old news (id <= L while held): history lost, re-read
  assert_non_null(find(as, K::read));
  h.read_result(0, ok(10));
  as = h.message(0, msg(20, 10));
  const PollCore::Action* a = find(as, K::answer_single);
  assert_non_null(a);  // one channel, one message: the shared fan-out body
  assert_ptr_equal(a->single.owner.get(), h.owners.back().get());
  assert_int_equal(a->single.msg->id, 20);
  assert_closed(h, as);
  assert_string_equal(PollCore::single_body("a", msg(20, 10)).c_str(),
                      "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":20,\"prev\":10,\"payload\":\"\"}]}}");
}

void test_hold_then_pubsub_run_multi(void**) {
  Host h({"a", "b"}, {10, 100});
  h.start_confirmed();
  h.read_result(1, ok(100));
  PollCore::Actions as = h.read_result(0, ok(10));
  assert_non_null(find(as, K::hold));
  // Three messages in one loop turn: answered together, cut at the break (45 is not 30's
  // successor), after the step runs.
  PollCore::Actions out;
  auto m20 = std::make_shared<proto::Message>(msg(20, 10));
  auto m30 = std::make_shared<proto::Message>(msg(30, 20));
  auto m45 = std::make_shared<proto::Message>(msg(45, 35));
  h.core->on_message(0, m20, *m20, out);
  h.core->on_message(0, m30, *m30, out);
  h.core->on_message(0, m30, *m30, out);  // a duplicate
  h.core->on_message(0, m45, *m45, out);
  assert_false(answered(out));
  assert_int_equal(count(out, K::wake), 3);  // the duplicate asks for nothing
  as = h.run();
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 1);
  assert_string_equal(e[0].channel.c_str(), "a");
  assert_true(ids(e[0]) == Ids({20, 30}));
}

void test_messages_during_read_are_kept(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  h.message(0, msg(20, 10));  // arrives while the read is in flight (Redis saw N = 10)
  PollCore::Actions as = h.read_result(0, ok(10));
  const PollCore::Action* a = find(as, K::answer_single);
  assert_non_null(a);
  assert_int_equal(a->single.msg->id, 20);
}

void test_gap_rereads(void**) {
  Host h({"a", "b"}, {10, 0});
  h.start_confirmed();
  h.read_result(0, ok(10));
  h.read_result(1, ok(0));
  PollCore::Actions as = h.message(0, msg(30, 20));  // prev 20, the client is at 10
  const PollCore::Action* r = find(as, K::read);
  assert_non_null(r);
  assert_int_equal(h.core->take_counts().rereads, 1);
  assert_false(answered(as));
  h.read_result(0, ok(30, {msg(20, 10), msg(30, 20)}));
  as = h.read_result(1, ok(0));
  auto e = body_of(find(as, K::answer));
  assert_true(ids(e[0]) == Ids({20, 30}));
}

void test_overflow_rereads(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  h.read_result(0, ok(10));
  // More messages than the buffer holds before the step runs: only Redis is exact now.
  PollCore::Actions out;
  std::vector<std::shared_ptr<proto::Message>> keep;
  for (uint64_t k = 0; k <= PollCore::kMaxPending; k++) {
    keep.push_back(std::make_shared<proto::Message>(msg(20 + 10 * k, 10 + 10 * k)));
    h.core->on_message(0, keep.back(), *keep.back(), out);
  }
  // The re-read reads Redis, not the mirror (which may not have seen the overflow).
  h.view.set(0, D::hold);
  PollCore::Actions as = h.run();
  assert_false(answered(as));
  assert_non_null(find(as, K::read));
  assert_int_equal(h.core->take_counts().rereads, 1);
  as = h.read_result(0, ok(30, {msg(20, 10), msg(30, 20)}));
  auto e = body_of(find(as, K::answer));
  assert_true(ids(e[0]) == Ids({20, 30}));
}

void test_redis_head_below_last_rereads(void**) {
  Host h({"a"}, {50});
  h.start_confirmed();
  h.read_result(0, ok(50));
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->on_redis_head(0, 50, out); });
  assert_null(find(as, K::read));  // N == L: nothing lost
  as = h.feed([&](PollCore::Actions& out) { h.core->on_redis_head(0, 0, out); });  // flushed
  assert_non_null(find(as, K::read));
  as = h.read_result(0, ok(0));
  auto e = body_of(find(as, K::answer));
  assert_int_equal(int(e[0].status), int(proto::EntryStatus::reset));
  assert_int_equal(int(e[0].reason), int(proto::ResetReason::lost));
  assert_int_equal(e[0].id, 0);
}

void test_pubsub_disagreeing_with_redis_is_dropped(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  h.read_result(0, ok(10));
  h.message(0, msg(30, 20));  // a gap that Redis never confirms
  for (int i = 0; i < PollCore::kMaxRereads - 1; i++) {
    PollCore::Actions as = h.read_result(0, ok(10));
    assert_non_null(find(as, K::read));
  }
  PollCore::Actions as = h.read_result(0, ok(10));  // trust Redis: forget it, keep holding
  assert_null(find(as, K::read));
  assert_false(answered(as));
  assert_int_equal(h.core->state(), PollCore::State::held);
  as = h.message(0, msg(20, 10));  // and a real successor still answers
  assert_non_null(find(as, K::answer_single));
}

// --- mirrors and fences ---------------------------------------------------------------------

void test_mirrors_decide_without_reads(void**) {
  Host h({"a", "b"}, {10, 40});
  h.view.set(0, D::newest, msg(20, 10));
  h.view.set(1, D::newest, msg(50, 40));
  PollCore::Actions as = h.start_confirmed();
  assert_null(find(as, K::read));
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 2);
  assert_int_equal(h.core->take_counts().mirror_decisions, 2);
}

void test_fence_before_answering_beside_holds(void**) {
  Host h({"a", "b"}, {10, 40});
  h.view.set(0, D::newest, msg(20, 10));
  h.view.set(1, D::hold);
  PollCore::Actions as = h.start_confirmed();
  assert_non_null(find(as, K::fence));
  assert_false(answered(as));
  // A message for b was on its way: it comes before the fence; then the round is redone.
  h.view.set(1, D::newest, msg(50, 40));
  as = h.feed([&](PollCore::Actions& out) { h.core->on_fence(true, out); });
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 2);
  assert_null(find(as, K::cancel_fence));
  assert_closed(h, as);
}

void test_fence_failed_redoes_once(void**) {
  Host h({"a", "b"}, {10, 40});
  h.view.set(0, D::newest, msg(20, 10));
  h.view.set(1, D::hold);
  h.start_confirmed();
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->on_fence(false, out); });
  // Not ok: decide again with what the mirrors know, and never ask a second fence.
  assert_null(find(as, K::fence));
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 1);
  assert_string_equal(e[0].channel.c_str(), "a");
}

void test_fence_refused_answers_at_once(void**) {
  Host h({"a", "b"}, {10, 40});
  h.view.set(0, D::newest, msg(20, 10));
  h.view.set(1, D::hold);
  h.start_confirmed();
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->on_fence_refused(out); });
  auto e = body_of(find(as, K::answer));
  assert_int_equal(e.size(), 1);
  assert_null(find(as, K::cancel_fence));
  assert_closed(h, as);
}

void test_fast_path(void**) {
  std::vector<proto::ChannelPos> pos = {{"a", 10}, {"b", 40}};
  View v({"a", "b"});
  std::string body;
  size_t delivered = 0;
  v.set(0, D::newest, msg(20, 10));
  v.set(1, D::unknown);
  assert_false(PollCore::answer_from_mirrors(pos, v, &body, &delivered));
  v.set(1, D::hold);
  assert_false(PollCore::answer_from_mirrors(pos, v, &body, &delivered));  // needs a fence
  v.set(0, D::hold);
  assert_false(PollCore::answer_from_mirrors(pos, v, &body, &delivered));  // to be held
  v.set(0, D::newest, msg(20, 10));
  v.set(1, D::newest, msg(50, 40));
  assert_true(PollCore::answer_from_mirrors(pos, v, &body, &delivered));
  assert_int_equal(delivered, 2);
  std::vector<proto::ReceivedEntry> e;
  std::string detail;
  assert_true(proto::parse_response(body, &e, &detail));
  assert_int_equal(e.size(), 2);
  assert_true(ids(e[1]) == Ids({50}));
  v.set(1, D::newest, msg(50, 40, PollCore::kResponseBudget));  // over budget: the slow path
  assert_false(PollCore::answer_from_mirrors(pos, v, &body, &delivered));
}

// --- bounds ---------------------------------------------------------------------------------

void test_response_size_bound(void**) {
  const size_t big = 3 << 20;  // three of these cross the 8 MiB budget
  Host h({"a", "b"}, {0, 0});
  h.start_confirmed();
  h.read_result(0, ok(30, {msg(10, 0, big), msg(20, 10, big), msg(30, 20, big)}));
  PollCore::Actions as = h.read_result(1, ok(5, {msg(5, 0)}));
  const PollCore::Action* a = find(as, K::answer);
  auto e = body_of(a);
  assert_int_equal(e.size(), 1);  // a's list cut to what fits; b waits for the next poll
  assert_true(ids(e[0]) == Ids({10, 20}));
  assert_int_equal(a->delivered, 2);
  assert_true(a->body.size() <= PollCore::kResponseBudget + 1024);

  Host one({"a"}, {0});  // a single message above the budget still goes out (alone)
  one.start_confirmed();
  as = one.read_result(0, ok(10, {msg(10, 0, PollCore::kResponseBudget + 1)}));
  assert_int_equal(find(as, K::answer)->delivered, 1);
}

// --- timeouts, errors, drops ----------------------------------------------------------------

void test_timeout_while_held(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  h.read_result(0, ok(10));
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->on_timeout(out); });
  const PollCore::Action* a = find(as, K::answer);
  assert_non_null(a);
  assert_string_equal(a->body.c_str(), "{}");
  assert_int_equal(h.core->take_counts().poll_timeouts, 1);
  assert_closed(h, as);
}

void test_timeout_while_reading_and_subscribing(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->on_timeout(out); });
  assert_false(answered(as));  // the read decides first
  as = h.read_result(0, ok(20, {msg(20, 10)}));
  assert_int_equal(body_of(find(as, K::answer)).size(), 1);  // news beats the timeout

  Host s({"a"}, {10});
  s.feed([&](PollCore::Actions& out) { s.core->start(out); });  // never confirmed
  as = s.feed([&](PollCore::Actions& out) { s.core->on_timeout(out); });
  assert_string_equal(find(as, K::answer)->body.c_str(), "{}");
  assert_int_equal(s.core->take_counts().poll_timeouts, 0);
  assert_closed(s, as);
}

void test_redis_down_503(void**) {
  Host h({"a", "b"}, {0, 0});
  h.start_confirmed();
  PollCore::Actions as = h.read_result(1, failed("redis error: BUSY"));
  assert_false(answered(as));  // wait for every read of the round
  as = h.read_result(0, ok(5, {msg(5, 0)}));
  const PollCore::Action* f = find(as, K::fail);
  assert_non_null(f);
  assert_int_equal(f->status, 503);
  assert_string_equal(f->error.c_str(), "redis error: BUSY");
  assert_null(find(as, K::answer));
  assert_int_equal(h.core->take_counts().redis_errors, 1);
  assert_closed(h, as);
}

void test_hub_unavailable_and_lost(void**) {
  Host h({"a"}, {0});
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) {
    h.core->start(out);
    h.core->on_hub_unavailable(out);
  });
  const PollCore::Action* f = find(as, K::fail);
  assert_non_null(f);
  assert_int_equal(f->status, 503);
  assert_string_equal(f->error.c_str(), "redis unavailable");
  assert_closed(h, as);

  Host l({"a"}, {10});
  l.start_confirmed();
  l.read_result(0, ok(10));
  as = l.feed([&](PollCore::Actions& out) { l.core->on_hub_lost(out); });
  f = find(as, K::fail);
  assert_non_null(f);
  assert_string_equal(f->error.c_str(), "redis unavailable (pub/sub connection lost)");
  assert_closed(l, as);
}

void test_hub_lost_while_fencing_cancels(void**) {
  Host h({"a", "b"}, {10, 40});
  h.view.set(0, D::newest, msg(20, 10));
  h.view.set(1, D::hold);
  h.start_confirmed();
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->on_hub_lost(out); });
  assert_non_null(find(as, K::fail));
  assert_int_equal(count(as, K::cancel_fence), 1);
  assert_closed(h, as);
}

void test_client_gone_while_reading_frees_once_after_reply(void**) {
  Host h({"a", "b"}, {0, 0});
  h.start_confirmed();
  PollCore::Actions as = h.feed([&](PollCore::Actions& out) { h.core->on_client_gone(out); });
  assert_int_equal(count(as, K::drop), 1);
  assert_int_equal(count(as, K::unsubscribe), 1);
  assert_null(find(as, K::free));  // two reads still point at the poll
  assert_int_equal(h.core->state(), PollCore::State::closed);
  as = h.read_result(1, ok(5, {msg(5, 0)}));
  assert_int_equal(h.frees, 0);
  assert_false(answered(as));
  as = h.read_result(0, failed("redis unavailable"));
  assert_int_equal(h.frees, 1);
  // Nothing after that: late events are ignored, never a second free.
  as = h.feed([&](PollCore::Actions& out) {
    h.core->on_timeout(out);
    h.core->on_client_gone(out);
    h.core->on_hub_lost(out);
    h.core->on_fence(true, out);
    h.core->on_read_result(0, ok(1), out);
    h.core->run(out);
  });
  assert_true(as.empty());
  assert_int_equal(h.frees, 1);
}

void test_client_gone_beats_hub_lost(void**) {
  Host h({"a"}, {10});
  h.start_confirmed();
  h.read_result(0, ok(10));
  PollCore::Actions out;
  h.core->on_hub_lost(out);
  h.core->on_client_gone(out);
  PollCore::Actions as = h.run();
  assert_int_equal(count(as, K::drop), 1);
  assert_null(find(as, K::fail));
  assert_closed(h, as);

  Host g({"a"}, {10});  // the other order in one loop turn: still no answer to write
  g.start_confirmed();
  g.read_result(0, ok(10));
  out.clear();
  g.core->on_client_gone(out);
  g.core->on_hub_lost(out);
  as = g.run();
  assert_int_equal(count(as, K::drop), 1);
  assert_null(find(as, K::fail));
  assert_closed(g, as);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_start_subscribes_then_reads),
      cmocka_unit_test(test_ok_answer_from_read),
      cmocka_unit_test(test_ok_cut_at_first_break),
      cmocka_unit_test(test_resets_behind_and_lost),
      cmocka_unit_test(test_multi_channel_partial_answer),
      cmocka_unit_test(test_out_of_order_results),
      cmocka_unit_test(test_hold_then_pubsub_fanout),
      cmocka_unit_test(test_hold_then_pubsub_run_multi),
      cmocka_unit_test(test_messages_during_read_are_kept),
      cmocka_unit_test(test_gap_rereads),
      cmocka_unit_test(test_overflow_rereads),
      cmocka_unit_test(test_redis_head_below_last_rereads),
      cmocka_unit_test(test_pubsub_disagreeing_with_redis_is_dropped),
      cmocka_unit_test(test_mirrors_decide_without_reads),
      cmocka_unit_test(test_fence_before_answering_beside_holds),
      cmocka_unit_test(test_fence_failed_redoes_once),
      cmocka_unit_test(test_fence_refused_answers_at_once),
      cmocka_unit_test(test_fast_path),
      cmocka_unit_test(test_response_size_bound),
      cmocka_unit_test(test_timeout_while_held),
      cmocka_unit_test(test_timeout_while_reading_and_subscribing),
      cmocka_unit_test(test_redis_down_503),
      cmocka_unit_test(test_hub_unavailable_and_lost),
      cmocka_unit_test(test_hub_lost_while_fencing_cancels),
      cmocka_unit_test(test_client_gone_while_reading_frees_once_after_reply),
      cmocka_unit_test(test_client_gone_beats_hub_lost),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
