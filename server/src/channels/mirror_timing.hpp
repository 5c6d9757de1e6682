// Every timing constant of the channel mirrors and of the hub that keeps them, in one place,
// with the reasoning that ties them together (mirror.hpp says why a mirror must be verified
// at all: history lost without a publish is invisible to pub/sub).
//
//   0 ms      a verification (GET msg_id) is sent; the mirror is trusted from here
//   700 ms    a mirror that polls use is due for its next verification (kVerifyAfterMs) ...
//   1200 ms   ... and the hub's mirror sweep (every kSweepMs) has sent it, at the latest
//   1500 ms   trust runs out (kTrustMs): polls read Redis until the GET's answer arrives
//
// So a busy mirror stays usable without a gap while Redis answers a GET within
// kTrustMs - kVerifyAfterMs - kSweepMs (300 ms), and a flush is noticed within kTrustMs.
#pragma once

#include <cstdint>

namespace rt::timing {

constexpr uint64_t kHubTickMs = 100;          // the hub's timer: liveness pings, fences, sweeps
constexpr uint64_t kSweepMs = 5 * kHubTickMs; // mirror seeds/verifications and linger expiry, full scans
constexpr uint64_t kVerifyAfterMs = 700;      // a used mirror is re-verified from this age
constexpr uint64_t kTrustMs = 1500;           // decisions allowed this long after a verification was sent
constexpr uint64_t kLingerMs = 2000;          // an unused channel stays subscribed (and mirrored) this long
constexpr uint64_t kPingEveryMs = 5000;       // liveness ping of the pub/sub connection

static_assert(kSweepMs % kHubTickMs == 0, "the sweep runs on hub ticks");
static_assert(kVerifyAfterMs + kSweepMs + 200 <= kTrustMs,
              "a due verification is sent, and answered within 200 ms, before the mirror's trust runs out");
static_assert(kTrustMs < kLingerMs,
              "a channel re-polled right after an answer keeps a mirror that can still be trusted");
static_assert(kPingEveryMs >= 10 * kHubTickMs, "pings are rare next to the hub's other work");

}  // namespace rt::timing
