// One process's share of a load phase: many keep-alive connections on one libevent loop.
//
// Two shapes:
//   hold   — each connection sends its request once and waits; the time its response
//            completes is recorded (absolute CLOCK_MONOTONIC ns). Used for held polls and
//            fan-out. Tells the parent through `ready_fd` once every request is written
//            ('r') and when its loop ends, before closing its connections ('d');
//            stops on a byte from `control_fd`, when every connection is answered, or at the
//            deadline.
//   closed — each connection sends, waits for the response, records its latency, sends again
//            (closed loop), for `duration_s` after `warmup_s`.
// Source addresses rotate over 127.0.0.2 .. 127.0.0.(1+n_sources) to get past the ephemeral
// port limit of a single source address.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct RunConfig {
  enum class Shape { hold, closed };
  Shape shape = Shape::closed;
  sockaddr_in dst{};
  size_t conns = 1;
  size_t first_index = 0;              // global index of this process's first connection
  int n_sources = 8;                   // source addresses to rotate over
  const std::vector<std::string>* requests = nullptr;  // connection i sends requests[i % size]
  double duration_s = 5;               // closed: measured time
  double warmup_s = 0.5;               // closed: not measured
  double deadline_s = 60;              // hold: hard stop
  int ready_fd = -1;                   // hold: one byte written when every request is sent
  int control_fd = -1;                 // hold: readable -> stop
  size_t max_connecting = 500;         // connections opened but not yet written, at most
};

struct RunResult {
  uint64_t completed = 0;      // responses counted (closed: after warm-up)
  uint64_t non2xx = 0;         // of those, status not 2xx
  uint64_t errors = 0;         // connect errors, resets, closes, malformed responses
  uint64_t measure_ns = 0;     // closed: measured wall time
  std::vector<uint32_t> latencies_us;  // closed: one per counted response
  std::vector<uint64_t> done_ns;       // hold: per connection, 0 = never answered
};

// Runs one phase to completion in this process. Returns false only if the loop could not be
// set up (the result then says nothing).
bool run_phase(const RunConfig& cfg, RunResult* out);

}  // namespace bench
