// rt-loadgen: the load generator of `make bench` (see bench/run.sh and docs/PERFORMANCE.md).
//
//   rt-loadgen MODE --target rt|nchan|plain --port P [options]
//
// Modes (each prints one line "RESULT key=value ..." on stdout; progress on stderr):
//   held     hold --n polls, report the server's memory per held poll (--pids: server PIDs;
//            an nginx master brings its workers)
//   fanout   hold --n polls on one channel, publish once, time until every poll is answered
//   multi-fanout  the same with every poll on --channels channels, the publish to one of them
//   catchup  closed loop of polls answered at once (a newer message is in the backlog)
//   publish  closed loop of publishes over HTTP (catchup and publish: --spread N spreads the
//            connections over N channels, e.g. over the masters of a Redis Cluster)
//   multi    closed loop of --channels-channel polls answered at once (one channel has news)
//   plain    closed loop of GET --path (the nginx floor; also checks the generator's speed)
//
// Work is spread over --procs forked processes (closed loops) or as many as the per-process
// file limit needs (held polls); every process runs one libevent loop (async_runner).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "async_runner.hpp"
#include "http.hpp"
#include "measure.hpp"
#include "targets.hpp"

namespace bench {
namespace {

struct Options {
  std::string mode;
  std::map<std::string, std::string> kv;
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  double num(const std::string& k, double def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : std::atof(it->second.c_str());
  }
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "rt-loadgen: %s\n", msg.c_str());
  std::exit(1);
}

std::vector<pid_t> parse_pids(const std::string& s) {
  std::vector<pid_t> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!part.empty()) out.push_back(pid_t(std::atoi(part.c_str())));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// Raises the soft file limit to the hard one; returns the limit in force.
size_t raise_nofile() {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return size_t(rl.rlim_cur);
}

bool read_full(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

bool write_full(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

// A forked worker process running one share of a phase.
struct Worker {
  pid_t pid = -1;
  int from_child = -1;  // 'r' when ready (hold), then the serialised RunResult
  int to_child = -1;    // closed by the parent to stop a hold phase
};

void send_result(int fd, const RunResult& r) {
  uint64_t head[6] = {r.completed, r.non2xx, r.errors, r.measure_ns, r.latencies_us.size(), r.done_ns.size()};
  write_full(fd, head, sizeof head);
  write_full(fd, r.latencies_us.data(), r.latencies_us.size() * sizeof(uint32_t));
  write_full(fd, r.done_ns.data(), r.done_ns.size() * sizeof(uint64_t));
}

bool recv_result(int fd, RunResult* r) {
  uint64_t head[6];
  if (!read_full(fd, head, sizeof head)) return false;
  r->completed = head[0];
  r->non2xx = head[1];
  r->errors = head[2];
  r->measure_ns = head[3];
  r->latencies_us.resize(head[4]);
  r->done_ns.resize(head[5]);
  return read_full(fd, r->latencies_us.data(), head[4] * sizeof(uint32_t)) &&
         read_full(fd, r->done_ns.data(), head[5] * sizeof(uint64_t));
}

// Forks `procs` workers, each running `base` with its share of `base.conns`.
std::vector<Worker> start_workers(RunConfig base, size_t procs) {
  std::vector<Worker> ws;
  size_t total = base.conns, first = 0;
  for (size_t i = 0; i < procs; i++) {
    size_t share = total / procs + (i < total % procs ? 1 : 0);
    int up[2], down[2];
    if (pipe(up) < 0 || pipe(down) < 0) die("pipe failed");
    fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
      close(up[0]);
      close(down[1]);
      for (const Worker& w : ws) {  // siblings' pipes are not ours
        close(w.from_child);
        close(w.to_child);
      }
      RunConfig cfg = base;
      cfg.conns = share;
      cfg.first_index = first;
      cfg.ready_fd = base.shape == RunConfig::Shape::hold ? up[1] : -1;
      cfg.control_fd = base.shape == RunConfig::Shape::hold ? down[0] : -1;
      RunResult res;
      if (share > 0) run_phase(cfg, &res);
      send_result(up[1], res);
      _exit(0);
    }
    close(up[1]);
    close(down[0]);
    ws.push_back({pid, up[0], down[1]});
    first += share;
  }
  return ws;
}

// Waits for every hold worker's ready byte, at most `max_s`.
bool wait_ready(const std::vector<Worker>& ws, double max_s) {
  uint64_t deadline = mono_ns() + uint64_t(max_s * 1e9);
  for (const Worker& w : ws) {
    pollfd p{w.from_child, POLLIN, 0};
    int64_t left = int64_t(deadline - mono_ns()) / 1000000;
    if (left <= 0 || poll(&p, 1, int(left)) <= 0) return false;
    char b;
    if (read(w.from_child, &b, 1) != 1) return false;
  }
  return true;
}

// Collects and merges the workers' results; reaps them and adds their CPU time to *cpu_s.
RunResult collect(std::vector<Worker>* ws, double* cpu_s) {
  RunResult all;
  *cpu_s = 0;
  for (Worker& w : *ws) {
    RunResult r;
    if (!recv_result(w.from_child, &r)) r.errors++;
    all.completed += r.completed;
    all.non2xx += r.non2xx;
    all.errors += r.errors;
    all.measure_ns = std::max(all.measure_ns, r.measure_ns);
    all.latencies_us.insert(all.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
    all.done_ns.insert(all.done_ns.end(), r.done_ns.begin(), r.done_ns.end());
    close(w.from_child);
    if (w.to_child >= 0) close(w.to_child);
    int status;
    rusage ru;
    wait4(w.pid, &status, 0, &ru);
    *cpu_s += double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  return all;
}

struct Common {
  Options opt;
  TargetConfig tcfg;
  std::unique_ptr<Target> target;
  std::vector<pid_t> server_pids;
  int n_sources = 8;
};

std::string read_token(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream f(path);
  std::string t;
  std::getline(f, t);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

// held / fanout / multi-fanout: N polls held on one fresh channel (multi-fanout: each poll on
// --channels fresh channels, the publish going to the middle one).
int run_hold(Common& c, bool fanout) {
  size_t n = size_t(c.opt.num("n", 1000));
  std::string channel = c.opt.get("channel", "bench-hold");
  std::string err, catchup, wait;
  if (c.opt.mode == "multi-fanout") {
    size_t k = size_t(c.opt.num("channels", 200));
    std::vector<std::string> chans;
    for (size_t i = 0; i < k; i++) chans.push_back(channel + "-" + std::to_string(i));
    if (!c.target->prepare_multi(chans, &catchup, &wait, &err)) die(err);
    channel = chans[k / 2];
  } else if (!c.target->prepare_channel(channel, &catchup, &wait, &err)) {
    die(err);
  }
  size_t limit = raise_nofile();
  size_t per_proc = limit > 200 ? limit - 100 : limit;
  size_t procs = (n + per_proc - 1) / per_proc;
  std::vector<std::string> reqs{wait};

  MemSample before = sample_memory(c.server_pids);
  RunConfig cfg;
  cfg.shape = RunConfig::Shape::hold;
  cfg.dst = c.tcfg.dst;
  cfg.conns = n;
  cfg.n_sources = c.n_sources;
  cfg.requests = &reqs;
  cfg.deadline_s = c.opt.num("deadline", 120);
  uint64_t t_start = mono_ns();
  std::vector<Worker> ws = start_workers(cfg, procs);
  bool ready = wait_ready(ws, cfg.deadline_s);
  double open_s = double(mono_ns() - t_start) / 1e9;
  uint64_t quiet_ms = c.server_pids.empty() ? 0 : wait_quiet(c.server_pids, 300, 20000);
  if (c.server_pids.empty()) usleep(500000);
  MemSample after = sample_memory(c.server_pids);

  uint64_t t0 = 0, cpu0 = 0;
  if (fanout) {
    // A profiler can start now (bench/profile.sh): tell it, give it time, then publish.
    std::string ready_file = c.opt.get("ready-file");
    if (!ready_file.empty()) {
      std::ofstream(ready_file) << "held\n";
      usleep(useconds_t(c.opt.num("publish-delay", 1) * 1e6));
    }
    std::string e;
    cpu0 = cpu_ticks(c.server_pids);
    t0 = mono_ns();
    if (!c.target->publish(channel, bench_payload("fanout"), &e)) std::fprintf(stderr, "publish: %s\n", e.c_str());
    // Workers stop by themselves once every poll is answered; bound the wait.
    double wait_s = c.opt.num("answer-timeout", 30);
    for (Worker& w : ws) {
      pollfd p{w.from_child, POLLIN, 0};
      int64_t left = int64_t(t0 + uint64_t(wait_s * 1e9) - mono_ns()) / 1000000;
      if (left <= 0 || poll(&p, 1, int(left)) <= 0) close(w.to_child), w.to_child = -1;
    }
  } else {
    for (Worker& w : ws) close(w.to_child), w.to_child = -1;
  }
  // A stop request reaches workers still waiting; closing twice is avoided above.
  for (Worker& w : ws)
    if (w.to_child >= 0) close(w.to_child), w.to_child = -1;
  for (Worker& w : ws) {  // each worker's 'd': its loop ended, its connections still open
    char b;
    (void)read_full(w.from_child, &b, 1);
  }
  // Server CPU from the publish until every poll is answered (clock-tick resolution).
  double fanout_cpu_ms = fanout ? double(cpu_ticks(c.server_pids) - cpu0) * 1000.0 / ticks_per_second() : 0;
  double gen_cpu = 0;
  RunResult r = collect(&ws, &gen_cpu);

  size_t early = 0, answered = 0;
  std::vector<uint64_t> lat;
  for (uint64_t d : r.done_ns) {
    if (d == 0) continue;
    if (d < t0 || !fanout) {
      early++;
    } else {
      answered++;
      lat.push_back(d - t0);
    }
  }
  size_t held = n - std::min(n, size_t(r.errors) + early);
  double per_poll_pss = held ? (double(after.pss_bytes) - double(before.pss_bytes)) / double(held) : 0;
  double per_poll_rss = held ? (double(after.rss_bytes) - double(before.rss_bytes)) / double(held) : 0;
  std::printf("RESULT mode=%s target=%s n=%zu held=%zu errors=%llu early=%zu ready=%d open_s=%.2f "
              "settle_ms=%llu procs=%zu mem_pss_per_poll=%.0f mem_rss_per_poll=%.0f "
              "pss_before=%llu pss_after=%llu",
              c.opt.mode.c_str(), c.tcfg.kind.c_str(), n, held,
              (unsigned long long)r.errors, early, ready ? 1 : 0, open_s, (unsigned long long)quiet_ms,
              procs, per_poll_pss, per_poll_rss, (unsigned long long)before.pss_bytes,
              (unsigned long long)after.pss_bytes);
  if (fanout) {
    Percentiles p = percentiles_ns(&lat);
    std::printf(" answered=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f server_cpu_ms=%.0f "
                "cpu_us_per_answer=%.1f",
                answered, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, fanout_cpu_ms,
                answered ? fanout_cpu_ms * 1000.0 / double(answered) : 0.0);
    // The fan-out's window on CLOCK_MONOTONIC (for `perf record -k mono` + `perf report --time`).
    std::printf(" window_mono=%.6f,%.6f", double(t0) / 1e9, double(t0) / 1e9 + p.max_ms / 1e3);
  }
  std::printf("\n");
  return 0;
}

// Closed-loop phases: catchup, publish, multi, plain.
int run_closed(Common& c) {
  std::vector<std::string> reqs;
  std::string err;
  const std::string& mode = c.opt.mode;
  std::string channel = c.opt.get("channel", "bench-" + mode);
  // --spread N: N channels (<channel>-0 ... -N-1), connection i on channel i % N (a Redis
  // Cluster spreads them over its masters); default one channel for every connection.
  size_t spread = size_t(c.opt.num("spread", 0));
  std::vector<std::string> names;
  if (spread == 0) names.push_back(channel);
  for (size_t i = 0; i < spread; i++) names.push_back(channel + "-" + std::to_string(i));
  if (mode == "catchup") {
    for (const auto& name : names) {
      std::string catchup, wait;
      if (!c.target->prepare_channel(name, &catchup, &wait, &err)) die(err);
      reqs.push_back(catchup);
    }
  } else if (mode == "publish") {
    // A publish of a typical comment; every connection publishes to the same channel.
    for (const auto& name : names) reqs.push_back(c.target->publish_request(name, bench_payload("publish")));
  } else if (mode == "multi") {
    size_t k = size_t(c.opt.num("channels", 200));
    std::vector<std::string> chans;
    for (size_t i = 0; i < k; i++) chans.push_back(channel + "-" + std::to_string(i));
    std::string catchup, wait;
    if (!c.target->prepare_multi(chans, &catchup, &wait, &err)) die(err);
    reqs.push_back(catchup);
  } else {  // plain
    reqs.push_back(make_get(c.tcfg.host, c.opt.get("path", "/floor"), ""));
  }
  raise_nofile();
  RunConfig cfg;
  cfg.shape = RunConfig::Shape::closed;
  cfg.dst = c.tcfg.dst;
  cfg.conns = size_t(c.opt.num("conns", 50));
  cfg.n_sources = c.n_sources;
  cfg.requests = &reqs;
  cfg.duration_s = c.opt.num("duration", 5);
  cfg.warmup_s = c.opt.num("warmup", 0.5);
  size_t procs = std::max<size_t>(1, size_t(c.opt.num("procs", 1)));
  // CPU of the server and of the processes it needs (Redis): the cost per request is steadier
  // than requests/s when other work shares the machine.
  std::vector<pid_t> aux = with_children(parse_pids(c.opt.get("aux-pids")));
  uint64_t srv0 = cpu_ticks(c.server_pids), aux0 = cpu_ticks(aux);
  uint64_t t0 = mono_ns();
  std::vector<Worker> ws = start_workers(cfg, procs);
  double gen_cpu = 0;
  RunResult r = collect(&ws, &gen_cpu);
  double wall = double(mono_ns() - t0) / 1e9;
  double srv_cpu = double(cpu_ticks(c.server_pids) - srv0) / ticks_per_second();
  double aux_cpu = double(cpu_ticks(aux) - aux0) / ticks_per_second();
  double secs = double(r.measure_ns) / 1e9;
  double rps = secs > 0 ? double(r.completed) / secs : 0;
  // Requests over the whole phase (warm-up included) at the measured rate.
  double cpu_us_per_req = rps > 0 ? (srv_cpu + aux_cpu) / (rps * wall) * 1e6 : 0;
  Percentiles p = percentiles_us(&r.latencies_us);
  std::printf("RESULT mode=%s target=%s conns=%zu procs=%zu rps=%.0f requests=%llu non2xx=%llu "
              "errors=%llu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f gen_cpu_pct=%.0f "
              "server_cpu_pct=%.0f aux_cpu_pct=%.0f cpu_us_per_req=%.1f gen_us_per_req=%.1f request_bytes=%zu\n",
              mode.c_str(), c.tcfg.kind.c_str(), cfg.conns, procs, rps,
              (unsigned long long)r.completed, (unsigned long long)r.non2xx,
              (unsigned long long)r.errors, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms,
              100.0 * gen_cpu / wall, 100.0 * srv_cpu / wall, 100.0 * aux_cpu / wall, cpu_us_per_req,
              rps > 0 ? gen_cpu / (rps * wall) * 1e6 : 0.0, reqs[0].size());
  return 0;
}

// Prints the catch-up request for use by other tools (wrk): "PATH ..." then "HEADER ..." lines.
int run_request(Common& c) {
  std::string err, catchup, wait;
  if (!c.target->prepare_channel(c.opt.get("channel", "bench-wrk"), &catchup, &wait, &err)) die(err);
  size_t sp1 = catchup.find(' '), sp2 = catchup.find(' ', sp1 + 1);
  std::printf("PATH %s\n", catchup.substr(sp1 + 1, sp2 - sp1 - 1).c_str());
  size_t pos = catchup.find("\r\n") + 2;
  while (pos < catchup.size()) {
    size_t end = catchup.find("\r\n", pos);
    if (end == pos || end == std::string::npos) break;
    std::string line = catchup.substr(pos, end - pos);
    if (line.compare(0, 5, "Host:") != 0) std::printf("HEADER %s\n", line.c_str());
    pos = end + 2;
  }
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) die("usage: rt-loadgen held|fanout|multi-fanout|catchup|publish|multi|plain|request --target rt|nchan|plain --port P [--opt v]...");
  Common c;
  c.opt.mode = argv[1];
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    if (a.compare(0, 2, "--") != 0 || i + 1 >= argc) die("bad argument " + a);
    c.opt.kv[a.substr(2)] = argv[++i];
  }
  std::string ip = c.opt.get("ip", "127.0.0.1");
  int port = int(c.opt.num("port", 0));
  if (port <= 0) die("--port is required");
  c.tcfg.kind = c.opt.get("target", "rt");
  c.tcfg.dst = loopback_addr(ip.c_str(), uint16_t(port));
  c.tcfg.host = ip + ":" + std::to_string(port);
  c.tcfg.prefix = c.opt.get("prefix", "/nchan-r");
  c.tcfg.token = read_token(c.opt.get("token-file"));
  c.tcfg.plain_path = c.opt.get("path", "/floor");
  c.n_sources = std::max(1, int(c.opt.num("sources", 8)));
  c.server_pids = with_children(parse_pids(c.opt.get("pids")));
  const std::string& m = c.opt.mode;
  if (m == "plain") return run_closed(c);
  std::string err;
  c.target = make_target(c.tcfg, &err);
  if (!c.target) die(err);
  if (m == "held") return run_hold(c, false);
  if (m == "fanout" || m == "multi-fanout") return run_hold(c, true);
  if (m == "catchup" || m == "publish" || m == "multi") return run_closed(c);
  if (m == "request") return run_request(c);
  die("unknown mode " + m);
}
