// Private redis-server processes for the unit tests that need a real Redis (replication
// included): a free loopback port, spawned quietly, stopped by PID, and an event loop that
// runs until a condition holds.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "redis_link.hpp"
#include "util.hpp"

extern char** environ;

namespace rt_test {

inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// redis-server on 127.0.0.1:port with `extra` flags (e.g. --replicaof HOST PORT); -1 on failure.
inline pid_t start_redis(int port, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--loglevel", "warning",
                                // replication: a full sync at once, over the socket, no file
                                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                                "--repl-diskless-load", "swapdb", "--dir", "/tmp"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);  // quiet start-up banner
  int rc = posix_spawnp(&pid, "redis-server", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

inline void stop_redis(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// One blocking command on a fresh connection; the reply as text ("" on failure): a status
// or string as is, an integer in decimal, an error as "ERR…", an array's first element.
inline std::string command(int port, const std::vector<std::string>& args) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return "";
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, int(args.size()), argv.data(), lens.data()));
  std::string out;
  if (r) {
    redisReply* v = r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0] : r;
    if (v->type == REDIS_REPLY_INTEGER) out = std::to_string(v->integer);
    else if (v->str) out.assign(v->str, v->len);
    freeReplyObject(r);
  }
  redisFree(c);
  return out;
}

// Waits (blocking) until `port` answers PING, at most `ms`.
inline bool wait_ready(int port, uint64_t ms = 5000) {
  uint64_t end = rt::now_ms() + ms;
  while (command(port, {"PING"}) != "PONG") {
    if (rt::now_ms() > end) return false;
    usleep(20000);
  }
  return true;
}

// A RedisLink (not started) to the redis-server on 127.0.0.1:port.
inline std::unique_ptr<rt::RedisLink> make_link(event_base* base, int port, uint64_t timeout_ms,
                                                const std::string& name) {
  rt::RedisAddress addr;
  addr.host = "127.0.0.1";
  addr.port = port;
  return std::make_unique<rt::RedisLink>(base, addr, timeout_ms, name);
}

// Runs `base` until pred() holds (checked after every loop iteration) or `ms` passed.
inline bool run_until(event_base* base, const std::function<bool()>& pred, uint64_t ms = 5000) {
  uint64_t end = rt::now_ms() + ms;
  while (!pred()) {
    if (rt::now_ms() > end) return false;
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    usleep(200);
  }
  return true;
}

}  // namespace rt_test
