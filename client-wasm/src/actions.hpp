// What the client core asks its host to do. The core never performs I/O: every event
// method of ClientCore appends Actions to a list, and the host (host.mjs in browsers, the
// CMocka tests natively) carries them out in order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol.hpp"

namespace rt::client {

using Millis = int64_t;  // milliseconds on the host's monotonic clock

// The connection status shown to the page.
enum class ConnState {
  connecting,  // polls started, no answer from the server yet (a poll's or a probe's)
  live,        // every poll group had a real answer since its latest failure
  retrying,    // a network error, 5xx, malformed response or deadline: backing off
  offline,     // the browser says it is offline: no polls until `online`
  error,       // a 4xx: the page asked for something invalid (a bug); retried with backoff
  disconnected,  // disconnect() or pagehide: no polls until connect() / pageshow
};

const char* conn_state_name(ConnState s) noexcept;

struct Status {
  ConnState state = ConnState::connecting;
  int attempt = 0;          // retrying/error: failures in a row of the worst poll group
  Millis retry_in_ms = -1;  // retrying/error: delay before the next try (-1: unknown/none)
  int http_status = 0;      // retrying/error: the HTTP status that failed (0: none)
  std::string reason;       // retrying/error: a short sentence

  bool operator==(const Status& o) const noexcept {
    return state == o.state && attempt == o.attempt && retry_in_ms == o.retry_in_ms &&
           http_status == o.http_status && reason == o.reason;
  }
  bool operator!=(const Status& o) const noexcept { return !(*this == o); }
};

// Who a message or reset is for (bit mask): explicit subscriptions, the scroll watcher.
enum : uint8_t { kToSubscribers = 1, kToScroll = 2 };

enum class ActionKind {
  start_poll,      // poll_id, url: GET url; report on_response / on_network_error with poll_id
  abort_poll,      // poll_id: abort that request; the core ignores anything it reports later
  arm_timer,       // delay_ms: (re)arm the single host timer; -1 cancels it. Calls on_timer.
  status,          // status: the connection status changed
  message,         // channel, id, payload (payload_json / payload_ref), targets: hand one message to the page
  reset,           // channel, id (resume id), reason, has_newest/newest_id/payload, targets
  measure_scroll,  // measure item positions now and call scroll_measured
  probe,           // poll_id (the probe's id), url: GET url at low priority; report on_probe
};

struct Action {
  ActionKind kind = ActionKind::status;
  uint64_t poll_id = 0;
  std::string url;
  Millis delay_ms = -1;
  std::string channel;
  uint64_t id = 0;
  proto::ResetReason reason = proto::ResetReason::lost;  // reset only
  bool has_newest = false;
  uint64_t newest_id = 0;
  std::string payload_json;  // the payload's JSON text (when the body was read natively)
  uint32_t payload_ref = 0;  // the host's handle for the payload (when the host parsed the body)
  uint8_t targets = 0;
  Status status;
};

using Actions = std::vector<Action>;

}  // namespace rt::client
