// Shared helpers of the client core's CMocka tests: the cmocka include dance for C++, and a
// simulated host that carries out the core's actions with simulated time.
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
extern "C" {
#include <cmocka.h>
}

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "client_core.hpp"
#include "response_text.hpp"

namespace rt::client::test {

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// Carries out actions like host.mjs does, with simulated time: records polls in flight,
// the armed timer, everything delivered to the page and every status.
struct SimHost {
  explicit SimHost(Config cfg) : core(std::move(cfg)) {}

  ClientCore core;
  Millis now = 0;
  Millis timer_at = -1;               // absolute time of the armed timer, -1 none
  std::map<uint64_t, std::string> in_flight;  // poll id -> url
  std::vector<uint64_t> started, aborted;     // every poll id ever started / aborted
  std::vector<Action> page;           // message and reset actions, in order
  std::vector<Status> statuses;
  int measures = 0;
  std::vector<uint64_t> probes;          // every probe action, in order
  std::vector<std::string> probe_urls;
  Actions last;                       // the actions of the latest event

  void take(Actions&& actions) {
    last = actions;
    for (Action& a : actions) {
      switch (a.kind) {
        case ActionKind::start_poll:
          assert_true(in_flight.emplace(a.poll_id, a.url).second);
          started.push_back(a.poll_id);
          break;
        case ActionKind::abort_poll:
          assert_int_equal(in_flight.erase(a.poll_id), 1);
          aborted.push_back(a.poll_id);
          break;
        case ActionKind::arm_timer:
          timer_at = a.delay_ms < 0 ? -1 : now + a.delay_ms;
          break;
        case ActionKind::status:
          statuses.push_back(a.status);
          break;
        case ActionKind::message:
        case ActionKind::reset:
          page.push_back(a);
          break;
        case ActionKind::measure_scroll:
          measures++;
          break;
        case ActionKind::probe:
          probes.push_back(a.poll_id);
          probe_urls.push_back(a.url);
          break;
      }
    }
  }

  // Moves time forward to `t`, firing the timer each time it falls due (like setTimeout).
  void advance_to(Millis t) {
    while (timer_at >= 0 && timer_at <= t) {
      now = std::max(now, timer_at);
      timer_at = -1;
      Actions out;
      core.on_timer(now, &out);
      take(std::move(out));
    }
    now = std::max(now, t);
  }
  void advance(Millis ms) { advance_to(now + ms); }
  // Fires a zero-delay timer (the batched channel-set change) if one is armed now.
  void settle() { advance(0); }

  bool subscribe(const std::string& c, uint64_t last_id = 0, bool from_now = false) {
    Actions out;
    bool ok = core.subscribe(now, c, last_id, from_now, &out);
    take(std::move(out));
    return ok;
  }
  bool unsubscribe(const std::string& c) {
    Actions out;
    bool ok = core.unsubscribe(now, c, &out);
    take(std::move(out));
    return ok;
  }
  void respond(uint64_t poll, int status, const std::string& body, Millis retry_after_ms = -1) {
    Actions out;
    in_flight.erase(poll);
    on_http_response(core, now, poll, status, body, retry_after_ms, &out);
    take(std::move(out));
  }
  void probe_answer(uint64_t probe, int status) {
    Actions out;
    core.on_probe(now, probe, status, &out);
    take(std::move(out));
  }
  void net_error(uint64_t poll) {
    Actions out;
    in_flight.erase(poll);
    core.on_network_error(now, poll, "connection refused", &out);
    take(std::move(out));
  }
  void online(bool on) {
    Actions out;
    core.set_online(now, on, &out);
    take(std::move(out));
  }
  void paused(bool on) {
    Actions out;
    core.set_paused(now, on, &out);
    take(std::move(out));
  }
  void visible(bool on) {
    Actions out;
    core.set_visible(now, on, &out);
    take(std::move(out));
  }

  // The only poll in flight (fails the test when there are zero or several).
  uint64_t only_poll() const {
    assert_int_equal(in_flight.size(), 1);
    return in_flight.begin()->first;
  }
  const std::string& url_of(uint64_t poll) const { return in_flight.at(poll); }
  Status status() const { return statuses.empty() ? Status{} : statuses.back(); }
  size_t count(ActionKind k) const {
    return static_cast<size_t>(std::count_if(last.begin(), last.end(), [k](const Action& a) { return a.kind == k; }));
  }
};

inline Config test_config() {
  Config cfg;
  cfg.url.base_url = "http://127.0.0.1:8080";
  cfg.seed = 42;
  return cfg;
}

}  // namespace rt::client::test
