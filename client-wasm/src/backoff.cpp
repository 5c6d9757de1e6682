#include "backoff.hpp"

#include <algorithm>

namespace rt::client {

Millis Backoff::next_max(const BackoffConfig& cfg, bool skip_first_step) const noexcept {
  int n = failures_;
  if (skip_first_step && n == 0) n = 1;
  if (n == 0) return cfg.first_retry_max_ms;
  // base * 2^(n-1), computed without overflow: stop doubling once past the cap.
  Millis d = cfg.base_ms;
  for (int i = 1; i < n && d < cfg.cap_ms; i++) d *= 2;
  return std::min(d, cfg.cap_ms);
}

Millis Backoff::next_delay(const BackoffConfig& cfg, Rng& rng, Millis retry_after_ms,
                           bool skip_first_step) noexcept {
  if (skip_first_step && failures_ == 0) failures_ = 1;
  Millis delay = rng.uniform(next_max(cfg, false));
  if (failures_ < 1000) failures_++;
  if (retry_after_ms >= 0) delay = std::max(delay, std::min(retry_after_ms, cfg.max_retry_after_ms));
  return delay;
}

Millis parse_retry_after(const std::string& value) noexcept {
  size_t b = value.find_first_not_of(" \t");
  if (b == std::string::npos) return -1;
  size_t e = value.find_last_not_of(" \t");
  Millis secs = 0;
  for (size_t i = b; i <= e; i++) {
    char c = value[i];
    if (c < '0' || c > '9') return -1;
    if (secs > 100000000) return -1;  // absurd: treat as absent rather than overflow
    secs = secs * 10 + (c - '0');
  }
  return secs * 1000;
}

}  // namespace rt::client
