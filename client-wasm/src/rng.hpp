// A small deterministic random number generator (splitmix64). The core draws its jitter
// from it; the host seeds it (crypto.getRandomValues in browsers, a constant in tests), so
// the same seed and events give the same actions.
#pragma once

#include <cstdint>

namespace rt::client {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) noexcept : state_(seed) {}

  uint64_t next() noexcept {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform integer in [0, max] (inclusive). The modulo bias is negligible for the small
  // ranges used here (at most a few million).
  int64_t uniform(int64_t max) noexcept {
    if (max <= 0) return 0;
    return static_cast<int64_t>(next() % (static_cast<uint64_t>(max) + 1));
  }

 private:
  uint64_t state_;
};

}  // namespace rt::client
