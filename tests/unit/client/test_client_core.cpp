// The client core end to end with a simulated host and simulated time: polls, dedupe,
// resets, backoff, Retry-After, deadline, offline/online/visibility, URL splitting,
// channel-set changes carrying ids, infinite scroll, malformed bodies.
#include "test_support.hpp"

using namespace rt::client;
using namespace rt::client::test;

static std::string ok_body(const std::string& c, std::vector<uint64_t> ids) {
  std::string s = "{\"" + c + "\":{\"status\":\"ok\",\"msg\":[";
  for (size_t i = 0; i < ids.size(); i++) {
    if (i) s += ",";
    s += "{\"id\":" + std::to_string(ids[i]) + ",\"payload\":{\"n\":" + std::to_string(ids[i]) + "}}";
  }
  return s + "]}}";
}

static std::vector<uint64_t> delivered(const SimHost& h, const std::string& c) {
  std::vector<uint64_t> v;
  for (const Action& a : h.page)
    if (a.kind == ActionKind::message && a.channel == c) v.push_back(a.id);
  return v;
}

static void test_subscribe_starts_one_poll_with_last_id(void** state) {
  (void)state;
  SimHost h(test_config());
  assert_true(h.subscribe("thread.42", 17));
  assert_true(h.in_flight.empty());  // batched: applied on the zero-delay timer
  assert_int_equal(h.timer_at, 0);
  h.settle();
  uint64_t p = h.only_poll();
  assert_true(contains(h.url_of(p), "http://127.0.0.1:8080/rt?c=thread.42&m=17&cachebreak="));
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::connecting));
  assert_false(h.subscribe("bad name"));
  assert_false(h.subscribe(std::string(129, 'a')));
  assert_false(h.subscribe("ok", rt::proto::kMaxId + 1));
}

static void test_repoll_at_once_dedupe_and_order(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a", 0);
  h.settle();
  h.respond(h.only_poll(), 200, ok_body("a", {1, 2, 3}));
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::live));
  uint64_t p = h.only_poll();  // re-polled at once, no timer involved
  assert_true(contains(h.url_of(p), "c=a&m=3&"));
  h.respond(p, 200, ok_body("a", {2, 3, 4, 5}));  // overlap: 2 and 3 again
  h.respond(h.only_poll(), 200, "{}");            // poll timeout, nothing new
  h.respond(h.only_poll(), 200, ok_body("a", {5, 6}));
  assert_true((delivered(h, "a") == std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  assert_string_equal(h.page[0].payload_json.c_str(), "{\"n\":1}");
  assert_true(contains(h.url_of(h.only_poll()), "c=a&m=6&"));
  // Control actions come before page actions in a batch (so callbacks see the new poll).
  h.respond(h.only_poll(), 200, ok_body("a", {7}));
  assert_int_equal(static_cast<int>(h.last.front().kind), static_cast<int>(ActionKind::start_poll));
  assert_int_equal(static_cast<int>(h.last.back().kind), static_cast<int>(ActionKind::message));
}

static void test_reset_moves_last_id(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("s", 3);
  h.settle();
  h.respond(h.only_poll(), 200, "{\"s\":{\"status\":\"reset\",\"id\":70,\"msg\":[{\"id\":70,\"payload\":5}]}}");
  assert_int_equal(h.page.size(), 1);
  assert_int_equal(static_cast<int>(h.page[0].kind), static_cast<int>(ActionKind::reset));
  assert_int_equal(h.page[0].id, 70);
  assert_true(h.page[0].has_newest);
  assert_string_equal(h.page[0].payload_json.c_str(), "5");
  assert_true(contains(h.url_of(h.only_poll()), "c=s&m=70&"));
  assert_int_equal(h.core.last_id("s"), 70);
  h.respond(h.only_poll(), 200, "{\"s\":{\"status\":\"reset\",\"id\":0,\"msg\":[]}}");
  assert_false(h.page.back().has_newest);
  assert_true(contains(h.url_of(h.only_poll()), "c=s&m=0&"));
}

// Contract v2 through the whole core: sparse ids linked by prev are delivered; a response
// whose chain is broken (a server bug or a rolled-back Redis the server did not notice)
// becomes a `lost` reset to its newest message, and the next poll resumes from there; the
// server's own reasons reach the page.
static void test_chain_check_and_reasons(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("s", 1764612345678901);
  h.settle();
  h.respond(h.only_poll(), 200,
            "{\"s\":{\"status\":\"ok\",\"msg\":[{\"id\":1764612345678950,\"prev\":1764612345678901,\"payload\":1},"
            "{\"id\":1764612345679000,\"prev\":1764612345678950,\"payload\":2}]}}");
  assert_int_equal(h.page.size(), 2);
  assert_int_equal(h.page[1].id, 1764612345679000);
  // The next message names a predecessor the client never got.
  h.respond(h.only_poll(), 200,
            "{\"s\":{\"status\":\"ok\",\"msg\":[{\"id\":1764612345679500,\"prev\":1764612345679400,\"payload\":3}]}}");
  assert_int_equal(h.page.size(), 3);
  assert_int_equal(static_cast<int>(h.page[2].kind), static_cast<int>(ActionKind::reset));
  assert_int_equal(static_cast<int>(h.page[2].reason), static_cast<int>(rt::proto::ResetReason::lost));
  assert_int_equal(h.page[2].id, 1764612345679500);
  assert_string_equal(h.page[2].payload_json.c_str(), "3");
  assert_true(contains(h.url_of(h.only_poll()), "c=s&m=1764612345679500&"));
  h.respond(h.only_poll(), 200, "{\"s\":{\"status\":\"reset\",\"id\":1764612345679900,\"reason\":\"behind\",\"msg\":[]}}");
  assert_int_equal(static_cast<int>(h.page.back().reason), static_cast<int>(rt::proto::ResetReason::behind));
  assert_int_equal(h.core.last_id("s"), 1764612345679900);
}

// subscribe(from: 'now'): the first poll asks with the largest id, the server's reset to its
// newest id only sets the position (the page sees nothing of what was published before);
// later messages arrive. A channel already polled keeps its position.
static void test_from_now(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("s", 0, true);
  h.settle();
  assert_true(contains(h.url_of(h.only_poll()), "c=s&m=9007199254740991&"));
  h.respond(h.only_poll(), 200,
            "{\"s\":{\"status\":\"reset\",\"id\":500,\"reason\":\"lost\",\"msg\":[{\"id\":500,\"prev\":400,\"payload\":1}]}}");
  assert_true(h.page.empty());
  assert_int_equal(h.core.last_id("s"), 500);
  assert_true(contains(h.url_of(h.only_poll()), "c=s&m=500&"));
  h.respond(h.only_poll(), 200, "{\"s\":{\"status\":\"ok\",\"msg\":[{\"id\":600,\"prev\":500,\"payload\":2}]}}");
  assert_int_equal(h.page.size(), 1);
  assert_int_equal(h.page[0].id, 600);
  h.subscribe("s", 0, true);  // a second 'now' subscriber joins at the current position
  h.settle();
  assert_true(contains(h.url_of(h.only_poll()), "c=s&m=600&"));
  // An explicit lastId given while a 'now' is pending wins.
  h.subscribe("t", 0, true);
  h.subscribe("t", 42, false);
  h.settle();
  assert_true(contains(h.url_of(h.only_poll()), "c=t&m=42"));
}

// disconnect(): every poll aborted, status disconnected, nothing scheduled; connect()
// resumes at once from the same ids.
static void test_pause_resume(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("s", 7);
  h.settle();
  h.respond(h.only_poll(), 200, "{\"s\":{\"status\":\"ok\",\"msg\":[{\"id\":8,\"prev\":7,\"payload\":1}]}}");
  uint64_t held = h.only_poll();
  h.paused(true);
  assert_true(h.in_flight.empty());
  assert_int_equal(h.aborted.back(), held);
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::disconnected));
  h.advance(120000);
  assert_true(h.in_flight.empty());
  h.net_error(held);  // a late report of the aborted poll changes nothing
  assert_true(h.in_flight.empty());
  h.paused(false);
  assert_true(contains(h.url_of(h.only_poll()), "c=s&m=8&"));
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::connecting));
}

// Fails the only poll `n` times with a network error, returning each retry delay.
static std::vector<Millis> fail_n(SimHost& h, int n) {
  std::vector<Millis> delays;
  for (int i = 0; i < n; i++) {
    h.net_error(h.only_poll());
    assert_true(h.in_flight.empty());  // no immediate retry
    assert_true(h.timer_at >= h.now);
    delays.push_back(h.timer_at - h.now);
    h.advance_to(h.timer_at);
  }
  return delays;
}

static void test_backoff_sequence_and_reset_after_success(void** state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 30; seed++) {
    Config cfg = test_config();
    cfg.seed = seed;
    SimHost h(cfg);
    h.subscribe("a");
    h.settle();
    auto d = fail_n(h, 9);
    const Millis bounds[] = {200, 250, 500, 1000, 2000, 4000, 8000, 10000, 10000};
    for (size_t i = 0; i < d.size(); i++) assert_true(d[i] >= 0 && d[i] <= bounds[i]);
    Status s = h.status();
    assert_int_equal(static_cast<int>(s.state), static_cast<int>(ConnState::retrying));
    assert_int_equal(s.attempt, 9);
    assert_true(contains(s.reason, "network error"));
    // Success: back to the first step.
    h.respond(h.only_poll(), 200, "{}");
    assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::live));
    auto again = fail_n(h, 2);
    assert_true(again[0] <= 200 && again[1] <= 250);
  }
}

static void test_5xx_and_retry_after(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  h.respond(h.only_poll(), 503, "{\"error\":\"redis down\"}", 3000);
  assert_int_equal(h.timer_at - h.now, 3000);
  Status s = h.status();
  assert_int_equal(static_cast<int>(s.state), static_cast<int>(ConnState::retrying));
  assert_int_equal(s.http_status, 503);
  h.advance(2999);
  assert_true(h.in_flight.empty());
  h.advance(1);
  assert_int_equal(h.in_flight.size(), 1);
  h.respond(h.only_poll(), 502, "");  // no Retry-After: plain backoff
  assert_true(h.timer_at - h.now <= 250);
}

static void test_deadline(void** state) {
  (void)state;
  Config cfg = test_config();
  cfg.poll_timeout_ms = 20000;
  cfg.deadline_margin_ms = 2000;
  SimHost h(cfg);
  h.subscribe("a");
  h.settle();
  uint64_t p = h.only_poll();
  h.advance(21999);
  assert_int_equal(h.only_poll(), p);
  h.advance(1);  // 22 s: aborted, then retried after the first backoff step
  assert_true(std::find(h.aborted.begin(), h.aborted.end(), p) != h.aborted.end());
  assert_true(contains(h.status().reason, "deadline"));
  h.advance(200);
  assert_int_equal(h.in_flight.size(), 1);
  assert_true(h.only_poll() != p);
  // A late answer of the aborted poll is ignored.
  size_t before = h.page.size();
  h.core.on_response(h.now, p, 200, ok_body("a", {1}), -1, &h.last);
  assert_int_equal(h.page.size(), before);
}

// "live" only after a real answer: a held poll is not enough (it may wait in the browser's
// queue behind the per-host connection limit). After probe_after_ms unanswered, one probe
// (GET /healthz) goes out; its 200 confirms the polls started before it.
static void test_live_needs_a_real_answer(void** state) {
  (void)state;
  Config cfg = test_config();
  cfg.poll_timeout_ms = 25000;
  SimHost h(cfg);
  h.subscribe("a");
  h.settle();
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::connecting));
  h.advance(cfg.probe_after_ms - 1);
  assert_true(h.probes.empty());
  h.advance(1);
  assert_int_equal(h.probes.size(), 1);
  assert_string_equal(h.probe_urls[0].c_str(), "http://127.0.0.1:8080/healthz");
  h.advance(20000);  // held, probe unanswered (queued behind other polls): still connecting
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::connecting));
  assert_int_equal(h.probes.size(), 1);  // one probe per request, no spin
  h.probe_answer(h.probes[0], 200);
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::live));

  // The server starts failing: retrying; the retry needs its own confirmation.
  h.respond(h.only_poll(), 503, "{\"error\":\"redis down\"}");
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::retrying));
  h.advance(200);
  assert_int_equal(h.in_flight.size(), 1);
  h.advance(cfg.probe_after_ms);
  assert_int_equal(h.probes.size(), 2);
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::retrying));
  h.probe_answer(h.probes[1], 503);  // Redis still down: not live
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::retrying));
  h.probe_answer(h.probes[1], 200);  // a stale report: ignored
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::retrying));
  // A real answer makes it live without a probe; re-polls after it stay live.
  h.respond(h.only_poll(), 200, "{}");
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::live));
  h.advance(5000);
  assert_int_equal(h.probes.size(), 2);
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::live));

  // A probe confirms only polls started before it was sent.
  SimHost g(cfg);
  g.subscribe("a");
  g.settle();
  g.advance(cfg.probe_after_ms);
  uint64_t first = g.only_poll();
  g.net_error(first);
  while (g.in_flight.empty()) g.advance(10);
  g.probe_answer(g.probes[0], 200);  // sent before the retry started
  assert_int_equal(static_cast<int>(g.status().state), static_cast<int>(ConnState::retrying));

  // Failing at once, every time: never live.
  SimHost f(cfg);
  f.subscribe("a");
  f.settle();
  for (int i = 0; i < 6; i++) {
    f.net_error(f.only_poll());
    assert_int_equal(static_cast<int>(f.status().state), static_cast<int>(ConnState::retrying));
    while (f.in_flight.empty()) f.advance(50);
  }

  // probePath "" disables probes: live after the first poll answer only.
  Config np = cfg;
  np.probe_path.clear();
  SimHost n(np);
  n.subscribe("a");
  n.settle();
  n.advance(20000);
  assert_true(n.probes.empty());
  assert_int_equal(static_cast<int>(n.status().state), static_cast<int>(ConnState::connecting));
  n.respond(n.only_poll(), 200, "{}");
  assert_int_equal(static_cast<int>(n.status().state), static_cast<int>(ConnState::live));
}

static void test_4xx_is_an_error_status_without_spinning(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  std::vector<Millis> bounds = {250, 500, 1000, 2000};
  for (Millis bound : bounds) {
    h.respond(h.only_poll(), 400, "{\"error\":\"parameter m: not an id\"}");
    Status s = h.status();
    assert_int_equal(static_cast<int>(s.state), static_cast<int>(ConnState::error));
    assert_int_equal(s.http_status, 400);
    assert_true(contains(s.reason, "parameter m"));
    assert_true(h.in_flight.empty());
    assert_true(h.timer_at - h.now <= bound);
    h.advance_to(h.timer_at);
  }
}

static void test_offline_online(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.subscribe("b");
  h.settle();
  uint64_t p = h.only_poll();
  h.online(false);
  assert_true(h.in_flight.empty());
  assert_true(std::find(h.aborted.begin(), h.aborted.end(), p) != h.aborted.end());
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::offline));
  h.advance(600000);  // nothing happens while offline, however long
  assert_true(h.in_flight.empty());
  h.subscribe("c");  // channel changes while offline start nothing either
  h.settle();
  assert_true(h.in_flight.empty());
  h.online(true);  // retry at once
  uint64_t q = h.only_poll();
  assert_true(contains(h.url_of(q), "c=a&m=0&c=b&m=0&c=c&m=0&"));
  assert_int_equal(static_cast<int>(h.status().state), static_cast<int>(ConnState::connecting));
  // Offline during a backoff wait: online skips the wait.
  h.net_error(q);
  h.advance_to(h.timer_at);
  h.net_error(h.only_poll());
  assert_true(h.in_flight.empty());
  h.online(false);
  h.online(true);
  assert_int_equal(h.in_flight.size(), 1);
}

static void test_visible_after_deadline_retries_at_once(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  uint64_t p = h.only_poll();
  h.visible(false);
  // A hidden tab's timers are throttled: time passes beyond the deadline without on_timer.
  h.now += 60000;
  h.visible(true);
  assert_true(std::find(h.aborted.begin(), h.aborted.end(), p) != h.aborted.end());
  uint64_t q = h.only_poll();
  assert_true(q != p);
  // Visible again before the deadline: the running poll is kept.
  h.visible(false);
  h.now += 1000;
  h.visible(true);
  assert_int_equal(h.only_poll(), q);
  // Visible during a backoff wait: retry at once.
  h.net_error(q);
  h.advance_to(h.timer_at);
  h.net_error(h.only_poll());
  assert_true(h.in_flight.empty());
  h.visible(false);
  h.visible(true);
  assert_int_equal(h.in_flight.size(), 1);
}

static void test_url_split_over_concurrent_polls(void** state) {
  (void)state;
  Config cfg = test_config();
  cfg.url_budget = 300;
  SimHost h(cfg);
  for (int i = 0; i < 60; i++) h.subscribe("channel." + std::to_string(i), 1000 + i);
  h.settle();
  assert_true(h.in_flight.size() > 1);
  std::string all;
  for (auto& [id, url] : h.in_flight) {
    assert_true(url.size() <= 300);
    all += url;
  }
  for (int i = 0; i < 60; i++)
    assert_true(contains(all, "c=channel." + std::to_string(i) + "&m=" + std::to_string(1000 + i) + "&"));
  // Each poll answers independently and re-polls alone.
  auto first = *h.in_flight.begin();
  size_t n = h.in_flight.size();
  h.respond(first.first, 200, "{}");
  assert_int_equal(h.in_flight.size(), n);
  assert_int_equal(h.count(ActionKind::abort_poll), 0);
}

static void test_ids_growing_past_budget_replan(void** state) {
  (void)state;
  const std::string a(100, 'a'), b(100, 'b');
  SimHost h0(test_config());
  h0.subscribe(a, 9);
  h0.subscribe(b, 9);
  h0.settle();
  size_t len = h0.url_of(h0.only_poll()).size();
  Config cfg = test_config();
  assert_true(len >= min_url_budget(cfg.url));
  cfg.url_budget = len;  // exactly fits with one-digit ids
  SimHost h(cfg);
  h.subscribe(a, 9);
  h.subscribe(b, 9);
  h.settle();
  uint64_t p = h.only_poll();
  h.respond(p, 200, ok_body(a, {10}));  // m=10: one byte longer than the budget allows
  assert_true(std::find(h.aborted.begin(), h.aborted.end(), p) == h.aborted.end());
  assert_int_equal(h.in_flight.size(), 2);
  for (auto& [id, url] : h.in_flight) assert_true(url.size() <= cfg.url_budget);
}

static void test_channel_set_change_carries_ids(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.subscribe("b");
  h.settle();
  h.respond(h.only_poll(), 200, "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":7,\"payload\":0}]},"
                                 "\"b\":{\"status\":\"reset\",\"id\":3,\"msg\":[]}}");
  uint64_t p = h.only_poll();
  h.subscribe("c", 11);
  h.settle();
  assert_true(std::find(h.aborted.begin(), h.aborted.end(), p) != h.aborted.end());
  assert_true(contains(h.url_of(h.only_poll()), "?c=a&m=7&c=b&m=3&c=c&m=11&"));
  // Removing a channel keeps its id; re-adding resumes from it.
  assert_true(h.unsubscribe("a"));
  assert_false(h.unsubscribe("never"));
  h.settle();
  assert_false(contains(h.url_of(h.only_poll()), "c=a&"));
  h.subscribe("a");
  h.settle();
  assert_true(contains(h.url_of(h.only_poll()), "c=a&m=7&"));
  // Several changes in one task: one restart.
  size_t starts = h.started.size();
  h.subscribe("d");
  h.subscribe("e");
  h.unsubscribe("d");
  h.settle();
  assert_int_equal(h.started.size(), starts + 1);
  // Counted subscriptions: the channel stays until the last one goes.
  h.subscribe("e");
  h.unsubscribe("e");
  h.settle();
  assert_true(contains(h.url_of(h.only_poll()), "c=e&"));
}

static void test_unsubscribed_channel_is_not_delivered_nor_advanced(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.subscribe("b");
  h.settle();
  uint64_t p = h.only_poll();
  h.unsubscribe("b");  // pending (batched) while the answer arrives
  h.respond(p, 200, "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":0}]},"
                    "\"b\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":0}]}}");
  assert_true((delivered(h, "a") == std::vector<uint64_t>{1}));
  assert_true(delivered(h, "b").empty());
  assert_int_equal(h.core.last_id("b"), 0);
  assert_false(contains(h.url_of(h.only_poll()), "c=b&"));
}

static void test_channel_change_during_backoff_does_not_spin(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  fail_n(h, 5);
  h.net_error(h.only_poll());
  Millis retry_at = h.timer_at;
  assert_true(h.in_flight.empty());
  h.subscribe("b");
  h.settle();
  assert_true(h.in_flight.empty());  // waits for the pending retry
  h.advance_to(retry_at);
  assert_true(contains(h.url_of(h.only_poll()), "c=a&m=0&c=b&m=0&"));
  h.net_error(h.only_poll());
  assert_true(h.timer_at - h.now <= 10000);
  assert_int_equal(h.status().attempt, 7);  // the streak carried over
}

static void test_malformed_and_truncated_bodies(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  std::string good = "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":{\"t\":\"x\"}},{\"id\":2,\"payload\":[1]}]}}";
  const char* bad[] = {"", "null", "[]", "\"x\"", "{\"a\":1}", "{\"a\":{\"status\":\"weird\",\"msg\":[]}}",
                       "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":2,\"payload\":1},{\"id\":1,\"payload\":1}]}}",
                       "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":-1,\"payload\":1}]}}",
                       "{\"a\":{\"status\":\"reset\",\"msg\":[]}}", "{\"bad name\":{\"status\":\"ok\",\"msg\":[]}}",
                       "\xff\xfe", "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":1}]}}"};
  for (const char* b : bad) {
    h.respond(h.only_poll(), 200, b);
    Status s = h.status();
    assert_int_equal(static_cast<int>(s.state), static_cast<int>(ConnState::retrying));
    assert_true(contains(s.reason, "malformed response"));
    h.advance_to(h.timer_at);
  }
  for (size_t len = 0; len < good.size(); len++) {  // every truncation
    h.respond(h.only_poll(), 200, good.substr(0, len));
    assert_true(contains(h.status().reason, "malformed"));
    h.advance_to(h.timer_at);
  }
  assert_true(h.page.empty());
  h.respond(h.only_poll(), 200, good);
  assert_true((delivered(h, "a") == std::vector<uint64_t>{1, 2}));
}

static std::vector<ScrollItem> column(size_t n, double scroll) {
  std::vector<ScrollItem> v;
  for (size_t i = 0; i < n; i++)
    v.push_back(ScrollItem{"img." + std::to_string(i), Rect{i * 100.0 - scroll, 0, i * 100.0 + 90 - scroll, 300}, 0});
  return v;
}

static size_t channels_in_polls(const SimHost& h) {
  size_t n = 0;
  for (auto& [id, url] : h.in_flight)
    for (size_t pos = url.find("c="); pos != std::string::npos; pos = url.find("&c=", pos + 1)) n++;
  return n;
}

static void test_scroll_all_then_closest_after_settle(void** state) {
  (void)state;
  SimHost h(test_config());
  Actions out;
  auto items = column(120, 0);
  items[5].last_id = 9;
  assert_int_equal(h.core.scroll_begin(h.now, items, -1, 0, &out), 0);
  h.take(std::move(out));
  h.settle();
  assert_int_equal(channels_in_polls(h), 120);  // page load: every item
  std::string all;
  for (auto& [id, url] : h.in_flight) all += url;
  assert_true(contains(all, "c=img.5&m=9&"));
  size_t starts = h.started.size(), aborts = h.aborted.size();
  // Scrolling: events every 300 ms for 3 s; nothing changes meanwhile.
  for (int i = 0; i < 10; i++) {
    h.core.scroll_moved(h.now, &out);
    h.take(std::move(out));
    h.advance(300);
    assert_int_equal(h.measures, 0);
  }
  assert_int_equal(h.started.size(), starts);
  assert_int_equal(h.aborted.size(), aborts);
  h.advance(699);
  assert_int_equal(h.measures, 0);  // 999 ms after the last scroll event
  h.advance(1);
  assert_int_equal(h.measures, 1);  // stopped for 1 s: the host is asked to measure
  h.core.scroll_measured(h.now, column(120, 6000), Rect{0, 0, 800, 1200}, &out);
  h.take(std::move(out));
  h.settle();
  assert_int_equal(channels_in_polls(h), 40);
  std::string now_all;
  for (auto& [id, url] : h.in_flight) now_all += url;
  assert_true(contains(now_all, "c=img.60&"));
  assert_false(contains(now_all, "c=img.0&"));
  assert_false(contains(now_all, "c=img.119&"));
  // The same positions again: nothing restarts.
  starts = h.started.size();
  h.core.scroll_measured(h.now, column(120, 6000), Rect{0, 0, 800, 1200}, &out);
  h.take(std::move(out));
  h.settle();
  assert_int_equal(h.started.size(), starts);
  // Explicit subscriptions survive scroll changes; scroll_end drops the scroll channels.
  h.subscribe("thread.1");
  h.core.scroll_end(h.now, &out);
  h.take(std::move(out));
  h.settle();
  assert_int_equal(channels_in_polls(h), 1);
}

static void test_scroll_custom_settle_and_closest(void** state) {
  (void)state;
  SimHost h(test_config());
  Actions out;
  h.core.scroll_begin(h.now, column(10, 0), 250, 3, &out);
  h.take(std::move(out));
  h.settle();
  h.core.scroll_moved(h.now, &out);
  h.take(std::move(out));
  h.advance(249);
  assert_int_equal(h.measures, 0);
  h.advance(1);
  assert_int_equal(h.measures, 1);
  h.core.scroll_measured(h.now, column(10, 0), Rect{0, 0, 100, 300}, &out);
  h.take(std::move(out));
  h.settle();
  assert_int_equal(channels_in_polls(h), 3);
  assert_true(contains(h.url_of(h.only_poll()), "c=img.0&m=0&c=img.1&m=0&c=img.2&m=0&"));
}

static void test_messages_to_both_subscribers_and_scroll(void** state) {
  (void)state;
  SimHost h(test_config());
  Actions out;
  h.core.scroll_begin(h.now, column(2, 0), -1, 0, &out);
  h.take(std::move(out));
  h.subscribe("img.1");
  h.settle();
  h.respond(h.only_poll(), 200, "{\"img.0\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":0}]},"
                                 "\"img.1\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":0}]}}");
  assert_int_equal(h.page.size(), 2);
  assert_int_equal(h.page[0].targets, kToScroll);
  assert_int_equal(h.page[1].targets, kToScroll | kToSubscribers);
}

static void test_close_aborts_everything(void** state) {
  (void)state;
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  Actions out;
  h.core.close(h.now, &out);
  h.take(std::move(out));
  assert_true(h.in_flight.empty());
  assert_int_equal(h.timer_at, -1);
  assert_false(h.subscribe("b"));
}

static void test_config_validation(void** state) {
  (void)state;
  std::string d;
  Config c = test_config();
  assert_true(validate_config(c, &d));
  c.url_budget = min_url_budget(c.url) - 1;
  assert_false(validate_config(c, &d));
  assert_true(contains(d, "urlBudget"));
  c = test_config();
  c.url.base_url = "http://x/";
  assert_false(validate_config(c, &d));
  c = test_config();
  c.backoff.cap_ms = 10;
  assert_false(validate_config(c, &d));
  c = test_config();
  c.closest = 0;
  assert_false(validate_config(c, &d));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_subscribe_starts_one_poll_with_last_id),
      cmocka_unit_test(test_repoll_at_once_dedupe_and_order),
      cmocka_unit_test(test_reset_moves_last_id),
      cmocka_unit_test(test_chain_check_and_reasons),
      cmocka_unit_test(test_from_now),
      cmocka_unit_test(test_pause_resume),
      cmocka_unit_test(test_backoff_sequence_and_reset_after_success),
      cmocka_unit_test(test_5xx_and_retry_after),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_live_needs_a_real_answer),
      cmocka_unit_test(test_4xx_is_an_error_status_without_spinning),
      cmocka_unit_test(test_offline_online),
      cmocka_unit_test(test_visible_after_deadline_retries_at_once),
      cmocka_unit_test(test_url_split_over_concurrent_polls),
      cmocka_unit_test(test_ids_growing_past_budget_replan),
      cmocka_unit_test(test_channel_set_change_carries_ids),
      cmocka_unit_test(test_unsubscribed_channel_is_not_delivered_nor_advanced),
      cmocka_unit_test(test_channel_change_during_backoff_does_not_spin),
      cmocka_unit_test(test_malformed_and_truncated_bodies),
      cmocka_unit_test(test_scroll_all_then_closest_after_settle),
      cmocka_unit_test(test_scroll_custom_settle_and_closest),
      cmocka_unit_test(test_messages_to_both_subscribers_and_scroll),
      cmocka_unit_test(test_close_aborts_everything),
      cmocka_unit_test(test_config_validation),
  };
  return cmocka_run_group_tests_name("client core", tests, nullptr, nullptr);
}
