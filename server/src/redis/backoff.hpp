// Reconnect delay schedule: starts at `initial_ms`, doubles after every failed attempt up to
// `max_ms`, and goes back to the start after a success. Pure logic (no clock, no I/O).
#pragma once

#include <cstdint>

namespace rt {

class Backoff {
 public:
  Backoff(uint64_t initial_ms = 100, uint64_t max_ms = 2000) noexcept
      : initial_ms_(initial_ms), max_ms_(max_ms), next_ms_(initial_ms) {}

  // The delay before the next attempt; advances the schedule.
  uint64_t next() noexcept {
    uint64_t d = next_ms_;
    next_ms_ = next_ms_ >= max_ms_ / 2 ? max_ms_ : next_ms_ * 2;
    return d;
  }

  // A connection succeeded: the next failure starts again from the initial delay.
  void reset() noexcept { next_ms_ = initial_ms_; }

 private:
  uint64_t initial_ms_, max_ms_, next_ms_;
};

}  // namespace rt
