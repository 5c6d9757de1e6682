// A private Redis Cluster for the module tests of server/src/redis/cluster: `masters`
// redis-server processes with --cluster-enabled on free loopback ports whose bus port
// (port + 10000) is free and below 65536, joined by `redis-cli --cluster create`, stopped
// by PID. Plus slot moves by hand (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT
// NODE), as redis-cli --cluster reshard does them.
#pragma once

#include <string>
#include <vector>

#include "redis_process.hpp"

namespace rt_test {

inline bool port_bindable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

inline int free_cluster_port() {
  for (int i = 0; i < 200; i++) {
    int p = free_port();
    if (p + 10000 < 65536 && port_bindable(p + 10000)) return p;
  }
  return -1;
}

// Runs a program to its end; its exit code (-1: could not run).
inline int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Cluster {
  std::vector<int> ports;
  std::vector<pid_t> pids;
  std::string dir;

  ~Cluster() { stop(); }

  void stop() {
    for (pid_t p : pids) stop_redis(p);
    pids.clear();
    if (!dir.empty()) run_program({"rm", "-rf", dir});
    dir.clear();
  }

  bool start(int masters) {
    char tmpl[] = "/tmp/rt-cluster-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return false;
    dir = tmpl;
    std::vector<std::string> create{"redis-cli", "--cluster", "create"};
    for (int i = 0; i < masters; i++) {
      int port = free_cluster_port();
      if (port < 0) return false;
      std::string conf = dir + "/nodes-" + std::to_string(port) + ".conf";
      pid_t pid = start_redis(port, {"--cluster-enabled", "yes", "--cluster-config-file", conf,
                                     "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"});
      if (pid < 0 || !wait_ready(port)) return false;
      ports.push_back(port);
      pids.push_back(pid);
      create.push_back("127.0.0.1:" + std::to_string(port));
    }
    create.insert(create.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    if (run_program(create) != 0) return false;
    uint64_t end = rt::now_ms() + 20000;
    for (int p : ports) {
      while (command(p, {"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos ||
             shard_count(p) != masters) {
        if (rt::now_ms() > end) return false;
        usleep(50000);
      }
    }
    return true;
  }

  // Shards with slots that `port` knows of.
  static int shard_count(int port) {
    redisContext* c = redisConnect("127.0.0.1", port);
    if (c == nullptr || c->err) {
      if (c) redisFree(c);
      return -1;
    }
    auto* r = static_cast<redisReply*>(redisCommand(c, "CLUSTER SHARDS"));
    int n = 0;
    if (r && r->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i < r->elements; i++)
        for (size_t k = 0; k + 1 < r->element[i]->elements; k += 2)
          if (std::string(r->element[i]->element[k]->str) == "slots" && r->element[i]->element[k + 1]->elements > 0) n++;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
  }

  std::string id(int port) const { return command(port, {"CLUSTER", "MYID"}); }

  // The port of the master serving `slot` according to `ask_port` (CLUSTER SLOTS).
  int owner(uint16_t slot, int ask_port = 0) const {
    int p = ask_port ? ask_port : ports[0];
    redisContext* c = redisConnect("127.0.0.1", p);
    if (c == nullptr || c->err) {
      if (c) redisFree(c);
      return -1;
    }
    auto* r = static_cast<redisReply*>(redisCommand(c, "CLUSTER SLOTS"));
    int out = -1;
    if (r && r->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i < r->elements; i++) {
        redisReply* e = r->element[i];
        if (slot >= e->element[0]->integer && slot <= e->element[1]->integer) out = int(e->element[2]->element[1]->integer);
      }
    if (r) freeReplyObject(r);
    redisFree(c);
    return out;
  }

  int other_than(int port) const {
    for (int p : ports)
      if (p != port) return p;
    return -1;
  }

  // The first steps of a slot move: IMPORTING on `to`, MIGRATING on `from`.
  bool begin_move(uint16_t slot, int from, int to) const {
    std::string s = std::to_string(slot);
    return command(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", id(from)}) == "OK" &&
           command(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", id(to)}) == "OK";
  }
  bool migrate_key(const std::string& key, int from, int to) const {
    return command(from, {"MIGRATE", "127.0.0.1", std::to_string(to), key, "0", "5000"}) == "OK";
  }
  // The last step: the slot is `to`'s on every node (waits until every live node says so:
  // their config epochs settle by gossip).
  bool end_move(uint16_t slot, int from, int to) const {
    std::string s = std::to_string(slot), to_id = id(to);
    bool ok = command(to, {"CLUSTER", "SETSLOT", s, "NODE", to_id}) == "OK" &&
              command(from, {"CLUSTER", "SETSLOT", s, "NODE", to_id}) == "OK";
    for (size_t i = 0; i < ports.size(); i++)
      if (ports[i] != to && ports[i] != from && pids[i] > 0)
        ok = command(ports[i], {"CLUSTER", "SETSLOT", s, "NODE", to_id}) == "OK" && ok;
    uint64_t end = rt::now_ms() + 10000;
    for (size_t i = 0; ok && i < ports.size(); i++) {
      while (pids[i] > 0 && owner(slot, ports[i]) != to) {
        if (rt::now_ms() > end) return false;
        usleep(20000);
      }
    }
    return ok;
  }
  // A whole move of `slot` with the keys in `keys`.
  bool move_slot(uint16_t slot, int from, int to, const std::vector<std::string>& keys = {}) const {
    if (!begin_move(slot, from, to)) return false;
    for (const auto& k : keys)
      if (!migrate_key(k, from, to)) return false;
    return end_move(slot, from, to);
  }
};

}  // namespace rt_test
