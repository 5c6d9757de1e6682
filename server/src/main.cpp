// rt-server: reliable real-time updates over HTTP long polls, backed by Redis.
// main: flags, the listening socket(s), N workers (one evhttp each) on N threads, clean stop
// on SIGINT/SIGTERM, SIGHUP re-reads the publish token file.
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "config.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "publish_token.hpp"
#include "scripts.hpp"
#include "worker.hpp"

namespace {

// Binds and listens on host:port (with SO_REUSEPORT when `reuseport`). Returns the socket
// or -1 with *error; *bound is "addr:port" and *actual_port the port bound (port 0: any).
int open_listener(const std::string& host, int port, bool reuseport, std::string* error, std::string* bound,
                  int* actual_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0) {
    *error = "--listen: cannot resolve '" + host + "': " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      *error = std::string("--reuseport: ") + strerror(errno);
      close(fd);
      fd = -1;
      continue;
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) break;
    *error = "--listen: cannot listen on " + host + ":" + port_text + ": " + strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return -1;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char addr[INET6_ADDRSTRLEN] = "?";
  int actual = port;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
      actual = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
      actual = ntohs(in6->sin6_port);
    }
  }
  *bound = std::string(addr) + ":" + std::to_string(actual);
  *actual_port = actual;
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  // A fan-out builds thousands of answers in one loop turn and frees them right after: by
  // default glibc gives that memory back at once (trim) and takes it again page by page at
  // the next burst (grow_heap + mprotect and page faults were a quarter of the fan-out
  // profile). Keep freed memory for reuse instead; a few MiB more resident after a burst.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 4 << 20);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  rt::Config cfg;
  std::string error;
  switch (rt::parse_args(argc, argv, &cfg, &error)) {
    case rt::ParseResult::help:
      fputs(rt::usage().c_str(), stdout);
      return 0;
    case rt::ParseResult::error:
      fprintf(stderr, "rt-server: %s\n", error.c_str());
      return 2;
    case rt::ParseResult::ok:
      break;
  }
  rt::log::set_level(cfg.log_level);
  if (!rt::load_publish_token(&cfg, &error)) {
    fprintf(stderr, "rt-server: %s\n", error.c_str());
    return 2;
  }
  if (cfg.publish_token.empty())
    RT_LOG(warn, "no publish token configured: POST /publish answers 403");
  rt::publish_token::set(std::move(cfg.publish_token));
  cfg.publish_token.clear();  // the workers read rt::publish_token, which SIGHUP replaces
  std::string lua_dir = rt::find_lua_dir(cfg.lua_dir);
  if (lua_dir.empty()) {
    fprintf(stderr, "rt-server: cannot find publish.lua%s (use --lua-dir)\n",
            cfg.lua_dir.empty() ? " next to the binary or in ./server/lua" : (" in " + cfg.lua_dir).c_str());
    return 2;
  }
  if (!cfg.web_dir.empty()) {
    struct stat st;
    if (stat(cfg.web_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      fprintf(stderr, "rt-server: --web: '%s' is not a directory\n", cfg.web_dir.c_str());
      return 2;
    }
  }

  // Signals: SIGPIPE ignored (writes to closed sockets fail with EPIPE instead); SIGINT,
  // SIGTERM and SIGHUP blocked in every thread and taken synchronously by main with sigwait.
  signal(SIGPIPE, SIG_IGN);
  sigset_t main_signals;
  sigemptyset(&main_signals);
  sigaddset(&main_signals, SIGINT);
  sigaddset(&main_signals, SIGTERM);
  sigaddset(&main_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &main_signals, nullptr);

  // One listening socket shared by every worker; with --reuseport one per worker (the
  // kernel spreads new connections over them, and over other processes on the port).
  std::string bound;
  int port = 0;
  std::vector<int> listen_fds;
  auto close_listeners = [&listen_fds] {
    for (int fd : listen_fds) close(fd);
  };
  int listeners = cfg.reuseport ? cfg.threads : 1;
  for (int i = 0; i < listeners; i++) {
    std::string b;
    int fd = open_listener(cfg.listen_host, i == 0 ? cfg.listen_port : port, cfg.reuseport, &error, &b, &port);
    if (fd < 0) {
      fprintf(stderr, "rt-server: %s\n", error.c_str());
      close_listeners();
      return 1;
    }
    if (i == 0) bound = b;
    listen_fds.push_back(fd);
  }

  // The connection bound, split between the workers (each enforces its share alone: no
  // cross-thread wake-ups, and the shares add up to the bound exactly).
  rlimit nofile{};
  uint64_t fd_limit = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY ? uint64_t(nofile.rlim_cur) : 1048576;
  size_t configured = cfg.max_connections;
  cfg.max_connections = rt::resolve_max_connections(configured, fd_limit, cfg.threads);
  if (configured > 0 && cfg.max_connections + 64 > fd_limit)
    RT_LOG(warn, "--max-connections is near or above the file limit: accepts may fail (EMFILE) before the bound")
        .kv("max_connections", cfg.max_connections)
        .kv("nofile", fd_limit);
  rt::metrics::get().connections_limit.store(int64_t(cfg.max_connections));

  std::vector<std::unique_ptr<rt::Worker>> workers;
  for (int i = 0; i < cfg.threads; i++) {
    // A --reuseport socket belongs to its worker, which closes it as soon as it stops (the
    // kernel then sends new connections to the port's other sockets); a shared one is ours.
    auto w = std::make_unique<rt::Worker>(cfg, lua_dir, i, listen_fds[size_t(i) % listen_fds.size()], cfg.reuseport);
    if (!w->init(&error)) {
      fprintf(stderr, "rt-server: %s\n", error.c_str());
      return 1;
    }
    workers.push_back(std::move(w));
  }
  RT_LOG(info, "listening")
      .kv("addr", bound)
      .kv("redis", cfg.redis_url)
      .kv("threads", cfg.threads)
      .kv("reuseport", cfg.reuseport ? "yes" : "no")
      .kv("poll_timeout", cfg.poll_timeout_s)
      .kv("max_connections", cfg.max_connections)
      .kv("lua_dir", lua_dir)
      .kv("web", cfg.web_dir);

  std::vector<std::thread> threads;
  for (auto& w : workers) {
    rt::Worker* wp = w.get();
    threads.emplace_back([wp] { wp->run(); });
  }
  int sig = 0;
  for (;;) {
    sigwait(&main_signals, &sig);
    if (sig != SIGHUP) break;
    // Token rotation: a new token applies to the next publish; a file that cannot be read
    // keeps the old token (an operator's typo must not disable publishing). The token
    // itself is never logged.
    if (cfg.publish_token_file.empty()) {
      RT_LOG(info, "SIGHUP: no --publish-token-file, nothing to re-read");
      continue;
    }
    std::string token;
    if (rt::read_token_file(cfg.publish_token_file, &token, &error)) {
      rt::publish_token::set(std::move(token));
      RT_LOG(info, "SIGHUP: publish token re-read").kv("file", cfg.publish_token_file);
    } else {
      RT_LOG(warn, "SIGHUP: publish token kept").kv("error", error);
    }
  }
  RT_LOG(info, "stopping").kv("signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
  for (auto& w : workers) w->stop();
  for (auto& t : threads) t.join();
  workers.clear();
  if (!cfg.reuseport) close_listeners();
  RT_LOG(info, "stopped");
  return 0;
}
