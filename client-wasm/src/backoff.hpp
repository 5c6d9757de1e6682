// Retry delays after failed polls (PROTOCOL.md section 6): disconnects are usually shorter
// than a second, so the first retry comes after a random 0..first_retry_max_ms; from the
// second failure on, "full jitter" exponential backoff: uniform in
// [0, min(cap_ms, base_ms * 2^(n-1))] for the n-th retry after the first. A successful poll
// resets the sequence. Retry-After (seconds from the server) raises a delay to at least that
// much, itself capped by max_retry_after_ms so a broken server cannot park a page forever.
#pragma once

#include "actions.hpp"
#include "rng.hpp"

namespace rt::client {

struct BackoffConfig {
  Millis first_retry_max_ms = 200;
  Millis base_ms = 250;
  Millis cap_ms = 10000;
  Millis max_retry_after_ms = 300000;
};

class Backoff {
 public:
  // Returns the delay before the next try and counts one more failure. `retry_after_ms`
  // (-1 when absent) is a lower bound. `skip_first_step` starts the sequence at the
  // exponential part (used for 4xx: a page bug must not be retried within 200 ms).
  Millis next_delay(const BackoffConfig& cfg, Rng& rng, Millis retry_after_ms,
                    bool skip_first_step) noexcept;

  // Upper bound of the delay the next call would draw (for tests and status details).
  Millis next_max(const BackoffConfig& cfg, bool skip_first_step) const noexcept;

  void reset() noexcept { failures_ = 0; }
  int failures() const noexcept { return failures_; }
  void set_failures(int n) noexcept { failures_ = n < 0 ? 0 : n; }

 private:
  int failures_ = 0;  // failures in a row since the last success
};

// Parses a Retry-After header value given as delta-seconds ("120"). Returns -1 when absent
// or not delta-seconds (the host converts an HTTP-date into delta-seconds before calling).
Millis parse_retry_after(const std::string& value) noexcept;

}  // namespace rt::client
