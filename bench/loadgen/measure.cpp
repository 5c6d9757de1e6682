#include "measure.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "http.hpp"

namespace bench {

static void add_with_children(pid_t pid, std::set<pid_t>* out) {
  if (!out->insert(pid).second) return;
  std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child;
  while (f >> child) add_with_children(child, out);
}

std::vector<pid_t> with_children(const std::vector<pid_t>& pids) {
  std::set<pid_t> all;
  for (pid_t p : pids) add_with_children(p, &all);
  return {all.begin(), all.end()};
}

// Value in kB of the first line starting with `key` in `path`, in bytes; 0 if absent.
static uint64_t kb_field(const std::string& path, const char* key) {
  std::ifstream f(path);
  std::string line;
  size_t klen = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, klen, key) == 0) return std::strtoull(line.c_str() + klen, nullptr, 10) * 1024;
  return 0;
}

MemSample sample_memory(const std::vector<pid_t>& pids) {
  MemSample s;
  for (pid_t p : pids) {
    std::string dir = "/proc/" + std::to_string(p);
    s.rss_bytes += kb_field(dir + "/status", "VmRSS:");
    s.pss_bytes += kb_field(dir + "/smaps_rollup", "Pss:");
  }
  return s;
}

uint64_t cpu_ticks(const std::vector<pid_t>& pids) {
  uint64_t total = 0;
  for (pid_t p : pids) {
    std::ifstream f("/proc/" + std::to_string(p) + "/stat");
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t rp = all.rfind(')');  // the command name may contain spaces
    if (rp == std::string::npos) continue;
    std::istringstream rest(all.substr(rp + 2));
    std::string field;
    // Fields after the name start at 3 (state); utime and stime are 14 and 15.
    for (int i = 3; i <= 15 && rest >> field; i++)
      if (i >= 14) total += std::strtoull(field.c_str(), nullptr, 10);
  }
  return total;
}

double ticks_per_second() { return double(sysconf(_SC_CLK_TCK)); }

uint64_t wait_quiet(const std::vector<pid_t>& pids, uint64_t quiet_ms, uint64_t max_ms) {
  uint64_t start = mono_ns();
  uint64_t last = cpu_ticks(pids);
  uint64_t quiet_since = mono_ns();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint64_t now = mono_ns();
    uint64_t t = cpu_ticks(pids);
    if (t != last) {
      last = t;
      quiet_since = now;
    }
    if (now - quiet_since >= quiet_ms * 1000000ull || now - start >= max_ms * 1000000ull)
      return (now - start) / 1000000;
  }
}

template <class T>
static Percentiles pct(std::vector<T>* v, double to_ms) {
  Percentiles p;
  p.count = v->size();
  if (v->empty()) return p;
  std::sort(v->begin(), v->end());
  auto at = [&](double q) {
    size_t i = size_t(q * double(v->size() - 1) + 0.5);
    return double((*v)[std::min(i, v->size() - 1)]) * to_ms;
  };
  p.p50_ms = at(0.50);
  p.p90_ms = at(0.90);
  p.p99_ms = at(0.99);
  p.max_ms = double(v->back()) * to_ms;
  return p;
}

Percentiles percentiles_us(std::vector<uint32_t>* us) { return pct(us, 1e-3); }
Percentiles percentiles_ns(std::vector<uint64_t>* ns) { return pct(ns, 1e-6); }

}  // namespace bench
