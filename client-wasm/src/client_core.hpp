// The rt client core: a state machine with no I/O (no clock, no sockets, no Emscripten).
// The host feeds it events with the current time and carries out the Actions it appends:
// polls to start or abort, one timer to (re)arm, messages and resets for the page,
// connection status changes, requests to measure scroll positions. The same code runs
// natively under CMocka and in browsers as WebAssembly (bindings.cpp, host.mjs).
//
// Duties (PROTOCOL.md section 6):
//  - per channel, the last id seen; older or repeated messages are dropped; a reset moves
//    the last id to the reset's id and tells the page (channel_state);
//  - re-poll at once after a 200; after a network error, a 5xx, a malformed body or the
//    client-side deadline (poll timeout + margin): backoff with jitter (backoff), honouring
//    Retry-After; a 4xx is reported as `error` and retried with backoff (never a spin);
//  - offline aborts every poll and waits; online retries at once; becoming visible restarts
//    polls whose deadline passed (hidden tabs throttle timers) and skips pending waits;
//  - every poll URL under the budget: the channels are split over concurrent polls
//    (poll_planner);
//  - a changed channel set aborts the running polls and starts new ones carrying every last
//    id; several changes in one host task are batched (applied on a zero-delay timer);
//  - infinite scroll: all items at first, then after scrolling has stopped for settle_ms
//    the `closest` items nearest the viewport (scroll_selector).
//
// Threading: single-threaded, like the page. Event methods may throw only std::bad_alloc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "actions.hpp"
#include "backoff.hpp"
#include "channel_state.hpp"
#include "poll_planner.hpp"
#include "rng.hpp"
#include "scroll_selector.hpp"

namespace rt::client {

struct Config {
  UrlShape url{"", "/rt"};
  size_t url_budget = 4096;            // bytes per poll URL, everything counted
  size_t max_channels_per_poll = 500;  // the server's default limit per request
  Millis poll_timeout_ms = 30000;      // the server's poll timeout
  Millis deadline_margin_ms = 5000;    // client-side deadline = poll timeout + this
  // "live" needs a real answer from the server. A quiet channel's poll is answered only at
  // the poll timeout, so a poll still unanswered after probe_after_ms is checked with a probe:
  // GET probe_path (/healthz), sent after the poll and at low priority, so that a browser
  // queueing requests behind its per-host connection limit sends it only after the poll; its
  // 200 shows the server (and Redis) up and the poll not stuck in the browser's queue.
  // An empty probe_path disables probes: live after the first poll answer only.
  Millis probe_after_ms = 1000;
  std::string probe_path = "/healthz";
  BackoffConfig backoff;
  Millis settle_ms = 1000;  // scrolling counts as stopped after this long without events
  size_t closest = 40;      // channels kept after scrolling settles
  uint64_t seed = 0;        // jitter and cachebreak randomness
};

// Checks a configuration; on failure returns false with *detail naming the option.
bool validate_config(const Config& cfg, std::string* detail);

class ClientCore {
 public:
  // `cfg` must pass validate_config.
  explicit ClientCore(Config cfg);

  // --- the page's channel set (applied on the next timer, batched) ---
  // Adds one explicit subscription to `channel` (counted: two subscribes need two
  // unsubscribes). `last_id` is what the page already shows; the higher of it and the id
  // the client already delivered wins. With `from_now` (last_id ignored) the channel starts
  // at its newest id on the server: only messages published after that are delivered (a
  // channel already polled just keeps its position). Returns false (and changes nothing)
  // for an invalid channel name or id.
  bool subscribe(Millis now, std::string_view channel, uint64_t last_id, bool from_now, Actions* out);
  // Removes one explicit subscription. The channel's last id is kept. Returns false when
  // there was none.
  bool unsubscribe(Millis now, std::string_view channel, Actions* out);

  // --- infinite scroll (one watcher per client) ---
  // Page load: listen to every item's channel. Items with invalid names are skipped (their
  // number is returned). Replaces any previous scroll selection. `settle_ms` (< 0: the
  // configured one) and `closest` (0: the configured one) apply to this watcher.
  size_t scroll_begin(Millis now, const std::vector<ScrollItem>& items, Millis settle_ms,
                      size_t closest, Actions* out);
  // The user scrolled: (re)starts the settle timer; the channel set does not change.
  void scroll_moved(Millis now, Actions* out);
  // Positions measured (after a measure_scroll action, or when the page asks): listen to the
  // `closest` channels nearest the viewport. Returns the number of skipped invalid items.
  size_t scroll_measured(Millis now, const std::vector<ScrollItem>& items, const Rect& viewport,
                         Actions* out);
  // Stops the scroll watcher: its channels are dropped (ids kept).
  void scroll_end(Millis now, Actions* out);

  // --- network ---
  // A poll got a 200. Its body was read by the host with the rules of proto::ResponseReader
  // (natively proto::parse_response, see response_text.hpp; in the browser the host's
  // JSON.parse walked through the reader): `entries` when it is a valid /rt response, else
  // null and `malformed` says why. `retry_after_ms` is -1 when absent. Reports for unknown or
  // aborted polls are ignored (also by the other network events).
  void on_answer(Millis now, uint64_t poll_id, const std::vector<proto::ReceivedEntry>* entries,
                 std::string_view malformed, Millis retry_after_ms, Actions* out);
  // A poll finished with another HTTP status (not 200) and its body text.
  void on_response(Millis now, uint64_t poll_id, int http_status, std::string_view body,
                   Millis retry_after_ms, Actions* out);
  // A poll failed without an HTTP response (connection refused, reset, CORS, ...).
  void on_network_error(Millis now, uint64_t poll_id, std::string_view detail, Actions* out);
  // The probe `probe_id` (a probe action) got HTTP `http_status` (0: no answer).
  void on_probe(Millis now, uint64_t probe_id, int http_status, Actions* out);

  // --- host ---
  void on_timer(Millis now, Actions* out);  // the armed timer fired
  void set_online(Millis now, bool online, Actions* out);
  void set_visible(Millis now, bool visible, Actions* out);
  // disconnect() / pagehide: aborts every poll and waits (status `disconnected`), keeping
  // every channel and last id; unpausing resumes from the same ids at once.
  void set_paused(Millis now, bool paused, Actions* out);
  // Aborts every poll and cancels the timer; later events are ignored.
  void close(Millis now, Actions* out);

  // --- queries (for the page, debugging and tests) ---
  std::vector<std::string> active_poll_urls() const;
  uint64_t last_id(std::string_view channel) const;
  const Status& status() const noexcept { return status_; }
  const Config& config() const noexcept { return cfg_; }

 private:
  struct Slot {  // one concurrent poll: a group of channels, re-polled in a loop
    std::vector<std::string> channels;
    uint64_t poll_id = 0;  // the request in flight, 0 when none
    std::string url;       // of the request in flight
    Millis deadline = -1;  // in flight: when to give up
    Millis started_at = -1;  // in flight: when it started
    Millis retry_at = -1;  // not in flight: when to try again (-1: start at the next pump)
    Backoff backoff;
    bool failing = false;  // the latest attempt failed (cleared by a success)
    bool confirmed = false;  // the server answered since the latest failure (a poll or a probe)
    bool probed = false;     // a probe was sent for the request in flight
    Status failure;        // details of that failure
  };

  void mark_dirty();
  void replan(Millis now, bool force, Actions* out);
  bool start_slot(Millis now, Slot& slot, Actions* out);
  void abort_slot(Slot& slot, Actions* out);
  void fail_slot(Millis now, Slot& slot, ConnState state, int http_status, std::string reason,
                 Millis retry_after_ms, bool skip_first_step);
  void pump(Millis now, Actions* out);
  void finish(Millis now, Actions* out);
  Status compute_status() const;
  Millis next_wake() const;
  Slot* slot_of(uint64_t poll_id);

  Config cfg_;
  Rng rng_;
  ChannelTable channels_;
  std::vector<Slot> slots_;
  bool plan_dirty_ = false;
  bool online_ = true;
  bool visible_ = true;
  bool paused_ = false;
  bool closed_ = false;
  uint64_t probe_id_ = 0;       // the probe in flight, 0 when none
  Millis probe_sent_at_ = -1;   // when it was sent: it confirms polls started before
  uint64_t next_probe_id_ = 1;
  bool all_confirmed() const noexcept;
  bool scroll_active_ = false;
  Millis scroll_settle_ms_ = 0;
  size_t scroll_closest_ = 0;
  Millis settle_at_ = -1;
  Millis armed_at_ = -1;  // absolute time of the armed host timer, -1 when none
  uint64_t next_poll_id_ = 1;
  Status status_;
  bool status_sent_ = false;
};

}  // namespace rt::client
