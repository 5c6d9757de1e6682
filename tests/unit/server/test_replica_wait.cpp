// Unit tests of server/src/replica_wait (--publish-min-replicas) against real redis-server
// processes: WAIT counts the replicas that have the writes made before it; one WAIT in
// flight covers every write answered before it was sent and the writes answered meanwhile
// share the next one (group commit); too few replicas answer with the count after the
// timeout; a lost connection answers -1 for everything in flight or queued.
#include "cmocka_wrap.hpp"

#include <memory>

#include "log.hpp"
#include "redis_link.hpp"
#include "redis_process.hpp"
#include "replica_wait.hpp"
#include "scripts.hpp"

namespace {

struct Fixture {
  int master_port = 0, replica_port = 0;
  pid_t master = -1, replica = -1;
  rt::EventBasePtr base{event_base_new()};
  rt::ScriptSet scripts;
  std::unique_ptr<rt::RedisLink> link;
  std::unique_ptr<rt::ReplicaWait> wait;
  bool run(const std::function<bool()>& pred, uint64_t ms = 5000) { return rt_test::run_until(base.get(), pred, ms); }
  void connect(uint32_t replicas, uint64_t timeout_ms) {
    rt::RedisAddress a;
    a.port = master_port;
    link = std::make_unique<rt::RedisLink>(base.get(), a, 2 * timeout_ms + 1000, "publish");
    wait = std::make_unique<rt::ReplicaWait>(*link, scripts, replicas, timeout_ms);
    link->set_listener(wait.get());
    link->start();
  }
  uint64_t wait_calls() {
    std::string s = rt_test::command(master_port, {"INFO", "commandstats"});
    size_t p = s.find("cmdstat_wait:calls=");
    return p == std::string::npos ? 0 : std::stoull(s.substr(p + 19));
  }
};

// One write whose reply hands over to the ReplicaWait, as publish.cpp does.
struct Write {
  Fixture* f;
  bool replied = false, done = false;
  long long confirmed = -2;
  static void on_reply(redisReply* r, void* priv) noexcept {
    auto* w = static_cast<Write*>(priv);
    w->replied = true;
    if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
      w->done = true;
      return;
    }
    w->f->wait->after_write(on_done, w);
  }
  static void on_done(void* priv, long long confirmed) noexcept {
    auto* w = static_cast<Write*>(priv);
    assert_false(w->done);  // exactly once
    w->done = true;
    w->confirmed = confirmed;
  }
  bool send(const std::string& key) {
    const char* argv[] = {"INCR", key.c_str()};
    size_t lens[] = {4, key.size()};
    return f->link->command(on_reply, this, 2, argv, lens);
  }
};

int setup(void** state) {
  auto* f = new Fixture();
  f->master_port = rt_test::free_port();
  f->master = rt_test::start_redis(f->master_port);
  if (f->master < 0 || !rt_test::wait_ready(f->master_port)) return -1;
  std::string err;
  if (!f->scripts.load_files("server/lua", &err)) return -1;
  *state = f;
  return 0;
}

int teardown(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->wait.reset();
  f->link.reset();
  rt_test::stop_redis(f->replica);
  rt_test::stop_redis(f->master);
  delete f;
  return 0;
}

void start_replica(Fixture* f) {
  f->replica_port = rt_test::free_port();
  f->replica = rt_test::start_redis(f->replica_port, {"--replicaof", "127.0.0.1", std::to_string(f->master_port)});
  assert_true(rt_test::wait_ready(f->replica_port));
  uint64_t end = rt::now_ms() + 5000;
  while (rt_test::command(f->replica_port, {"INFO", "replication"}).find("master_link_status:up") == std::string::npos) {
    assert_true(rt::now_ms() < end);
    usleep(20000);
  }
}

void test_confirmed_by_a_replica_group_commit(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  start_replica(f);
  f->connect(1, 8000);  // generous: a loaded machine may be slow to replicate
  assert_true(f->run([&] { return f->link->up(); }));
  assert_true(f->run([&] { return !f->scripts.publish.sha.empty(); }));  // SCRIPT LOAD on connect
  uint64_t before = f->wait_calls();
  // 20 writes pipelined: their replies come in one batch, the first sends a WAIT, the rest
  // queue behind it and share the next.
  std::vector<std::unique_ptr<Write>> ws;
  for (int i = 0; i < 20; i++) {
    ws.push_back(std::make_unique<Write>(Write{f}));
    assert_true(ws.back()->send("k"));
  }
  assert_true(f->run([&] {
    for (auto& w : ws) if (!w->done) return false;
    return true;
  }, 20000));
  for (auto& w : ws) assert_int_equal(w->confirmed, 1);
  uint64_t waits = f->wait_calls() - before;
  assert_true(waits >= 1 && waits <= 2);  // group commit: not one WAIT per write
  assert_string_equal(rt_test::command(f->replica_port, {"GET", "k"}).c_str(), "20");
}

void test_too_few_replicas_after_the_timeout(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->connect(1, 200);  // no replica at all
  assert_true(f->run([&] { return f->link->up(); }));
  Write w{f};
  uint64_t t0 = rt::now_ms();
  assert_true(w.send("k"));
  assert_true(f->run([&] { return w.done; }));
  assert_int_equal(w.confirmed, 0);
  assert_true(rt::now_ms() - t0 >= 150);  // WAIT waited for its timeout
}

void test_lost_connection_answers_unknown(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->connect(1, 1500);  // no replica: the WAIT blocks
  assert_true(f->run([&] { return f->link->up(); }));
  Write a{f}, b{f};
  assert_true(a.send("k"));
  assert_true(f->run([&] { return a.replied; }));  // a's WAIT is in flight now
  assert_true(b.send("k"));                         // queued behind it on the connection
  f->run([] { return false; }, 100);
  assert_false(a.done);
  rt_test::command(f->master_port, {"CLIENT", "KILL", "TYPE", "normal"});
  assert_true(f->run([&] { return a.done && b.done; }));
  assert_int_equal(a.confirmed, -1);
  // b's write may have been answered before the kill (then -1 from the WAIT) or lost with
  // the connection (its reply NULL): either way never "confirmed".
  assert_true(b.confirmed == -1 || b.confirmed == -2);
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  rt::log::set_level(rt::log::Level::error);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_confirmed_by_a_replica_group_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_too_few_replicas_after_the_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_connection_answers_unknown, setup, teardown),
  };
  return cmocka_run_group_tests_name("server/replica_wait", tests, nullptr, nullptr);
}
