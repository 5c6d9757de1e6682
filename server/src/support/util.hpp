// Small shared helpers: one owner per C object (std::unique_ptr with C deleters) and a
// monotonic clock in milliseconds.
#pragma once

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include <cstdint>
#include <ctime>
#include <memory>

namespace rt {

struct EventBaseDeleter { void operator()(event_base* b) const noexcept { event_base_free(b); } };
struct EventDeleter { void operator()(event* e) const noexcept { event_free(e); } };
struct JsonDeleter { void operator()(json_t* j) const noexcept { json_decref(j); } };
// evbuffer_free only drops the owner's reference: answers that add the buffer by reference
// (evbuffer_add_buffer_reference) keep it until they are written.
struct EvbufferDeleter { void operator()(evbuffer* b) const noexcept { evbuffer_free(b); } };

using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;
using EvbufferPtr = std::unique_ptr<evbuffer, EvbufferDeleter>;

// Milliseconds on the monotonic clock (never jumps with wall-clock changes).
inline uint64_t now_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Microseconds on the monotonic clock, for latency histograms.
inline uint64_t now_us() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}

inline timeval ms_to_tv(uint64_t ms) noexcept {
  timeval tv;
  tv.tv_sec = time_t(ms / 1000);
  tv.tv_usec = suseconds_t((ms % 1000) * 1000);
  return tv;
}

}  // namespace rt
