// What the generator reads about the servers it drives (/proc) and how it summarises
// latencies.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

// `pids` and, recursively, their child processes (an nginx master brings its workers).
std::vector<pid_t> with_children(const std::vector<pid_t>& pids);

struct MemSample {
  uint64_t rss_bytes = 0;  // sum of VmRSS (/proc/PID/status)
  uint64_t pss_bytes = 0;  // sum of Pss (/proc/PID/smaps_rollup): shared pages counted once
};
MemSample sample_memory(const std::vector<pid_t>& pids);

// Sum of user+system CPU time of `pids` in clock ticks (/proc/PID/stat).
uint64_t cpu_ticks(const std::vector<pid_t>& pids);
double ticks_per_second();

// Waits until `pids` used no CPU for `quiet_ms`, at most `max_ms`; returns the wait in ms.
// Used to know that a server has taken in every request sent to it.
uint64_t wait_quiet(const std::vector<pid_t>& pids, uint64_t quiet_ms, uint64_t max_ms);

struct Percentiles {
  size_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};
// Sorts `us` (microseconds) in place and reads percentiles off it.
Percentiles percentiles_us(std::vector<uint32_t>* us);
// The same for nanosecond samples.
Percentiles percentiles_ns(std::vector<uint64_t>* ns);

}  // namespace bench
