// Unit tests of server/src/redis_link against real redis-server processes: the master-only
// mode of Sentinel (ROLE checked before the link counts as up; a replica dropped and
// reported; a READONLY reply drops a demoted master), moving a link (set_address), and the
// trouble hook on a refused connection.
#include "cmocka_wrap.hpp"

#include <memory>

#include "log.hpp"
#include "redis_link.hpp"
#include "redis_process.hpp"

namespace {

struct Trouble {
  int calls = 0;
  int not_master = 0;
  static void hook(void* arg, rt::RedisLink&, bool nm) noexcept {
    auto* t = static_cast<Trouble*>(arg);
    t->calls++;
    if (nm) t->not_master++;
  }
};

struct Ups : rt::RedisLink::Listener {
  int up = 0, down = 0;
  void on_link_up() noexcept override { up++; }
  void on_link_down() noexcept override { down++; }
};

struct Fixture {
  int master_port = 0, replica_port = 0;
  pid_t master = -1, replica = -1;
  rt::EventBasePtr base{event_base_new()};
  Trouble trouble;
  Ups ups;
  std::unique_ptr<rt::RedisLink> link;

  // A link made for Sentinel mode: no address yet, master only.
  void make_link(uint64_t timeout_ms = 1000) {
    rt::RedisAddress a;
    a.host.clear();
    a.port = 0;
    link = std::make_unique<rt::RedisLink>(base.get(), a, timeout_ms, "test");
    link->set_require_master(true);
    link->set_trouble_hook(Trouble::hook, &trouble);
    link->set_listener(&ups);
    link->start();  // no address: nothing happens
  }
  bool wait(const std::function<bool()>& pred, uint64_t ms = 5000) { return rt_test::run_until(base.get(), pred, ms); }
};

int setup(void** state) {
  auto* f = new Fixture();
  f->master_port = rt_test::free_port();
  f->master = rt_test::start_redis(f->master_port);
  if (f->master < 0 || !rt_test::wait_ready(f->master_port)) return -1;
  f->replica_port = rt_test::free_port();
  f->replica = rt_test::start_redis(f->replica_port, {"--replicaof", "127.0.0.1", std::to_string(f->master_port)});
  if (f->replica < 0 || !rt_test::wait_ready(f->replica_port)) return -1;
  *state = f;
  return 0;
}

int teardown(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->link.reset();
  rt_test::stop_redis(f->replica);
  rt_test::stop_redis(f->master);
  delete f;
  return 0;
}

struct Reply {
  bool called = false;
  std::string text;
  int type = 0;
  static void fn(redisReply* r, void* priv) noexcept {
    auto* self = static_cast<Reply*>(priv);
    self->called = true;
    self->type = r ? r->type : -1;
    if (r && r->str) self->text.assign(r->str, r->len);
  }
};

void test_waits_for_an_address_then_checks_role(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->make_link();
  assert_false(f->wait([&] { return f->link->up(); }, 300));  // no address: never connects
  assert_int_equal(f->trouble.calls, 0);

  // A replica is not the master: never up, reported as not_master, retried (and refused again).
  f->link->set_address("127.0.0.1", f->replica_port);
  assert_true(f->wait([&] { return f->trouble.not_master >= 1; }));
  assert_false(f->link->up());
  assert_int_equal(f->ups.up, 0);
  const char* argv[] = {"PING"};
  size_t lens[] = {4};
  Reply r;
  assert_false(f->link->command(Reply::fn, &r, 1, argv, lens));  // refused while not up

  // Moved to the master: up once ROLE says so; commands flow.
  f->link->set_address("127.0.0.1", f->master_port);
  assert_true(f->wait([&] { return f->link->up(); }));
  assert_int_equal(f->ups.up, 1);
  assert_string_equal(f->link->host().c_str(), "127.0.0.1");
  assert_int_equal(f->link->port(), f->master_port);
  assert_true(f->link->command(Reply::fn, &r, 1, argv, lens));
  assert_true(f->wait([&] { return r.called; }));
  assert_string_equal(r.text.c_str(), "PONG");

  // The same address again: nothing happens (no reconnect).
  int troubles = f->trouble.calls;
  f->link->set_address("127.0.0.1", f->master_port);
  assert_true(f->link->up());
  assert_false(f->wait([&] { return f->ups.down > 0; }, 200));
  assert_int_equal(f->trouble.calls, troubles);
}

void test_moving_drops_pending_commands(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->make_link();
  f->link->set_address("127.0.0.1", f->master_port);
  assert_true(f->wait([&] { return f->link->up(); }));
  // A command in flight when the link moves gets NULL; the link is down, then up again.
  const char* argv[] = {"DEBUG", "SLEEP", "0.3"};
  size_t lens[] = {5, 5, 3};
  Reply r;
  assert_true(f->link->command(Reply::fn, &r, 3, argv, lens));
  int troubles = f->trouble.calls;
  f->link->set_address("localhost", f->master_port);  // another address (same server)
  assert_true(r.called);
  assert_int_equal(r.type, -1);  // NULL: the connection it was sent on is gone
  assert_int_equal(f->ups.down, 1);
  assert_true(f->wait([&] { return f->link->up(); }));
  assert_int_equal(f->ups.up, 2);
  assert_int_equal(f->trouble.calls, troubles);  // a move is no trouble
}

void test_readonly_drops_a_demoted_master(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->make_link();
  f->link->set_address("127.0.0.1", f->master_port);
  assert_true(f->wait([&] { return f->link->up(); }));
  // The master becomes a replica of the old replica (which becomes a master) under the
  // link's connection: Redis keeps the connection, writes answer READONLY.
  assert_string_equal(rt_test::command(f->replica_port, {"REPLICAOF", "NO", "ONE"}).c_str(), "OK");
  assert_string_equal(rt_test::command(f->master_port, {"REPLICAOF", "127.0.0.1", std::to_string(f->replica_port)}).c_str(),
                      "OK");
  const char* argv[] = {"SET", "k", "v"};
  size_t lens[] = {3, 1, 1};
  Reply r;
  assert_true(f->link->command(Reply::fn, &r, 3, argv, lens));
  assert_true(f->wait([&] { return r.called; }));
  assert_int_equal(r.type, REDIS_REPLY_ERROR);
  assert_non_null(strstr(r.text.c_str(), "READONLY"));
  // Dropped from the next loop turn, reported as not the master; reconnecting to the same
  // address finds a replica (ROLE) and stays down.
  assert_true(f->wait([&] { return !f->link->up() && f->trouble.not_master >= 1; }));
  assert_int_equal(f->ups.down, 1);
  assert_false(f->wait([&] { return f->link->up(); }, 500));
  // Pointed at the new master: up again.
  f->link->set_address("127.0.0.1", f->replica_port);
  assert_true(f->wait([&] { return f->link->up(); }));
}

void test_refused_connection_is_trouble(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->make_link();
  f->link->set_address("127.0.0.1", rt_test::free_port());  // nothing listens
  assert_true(f->wait([&] { return f->trouble.calls >= 2; }));  // every attempt (with backoff)
  assert_int_equal(f->trouble.not_master, 0);
  assert_false(f->link->up());
}

void test_plain_mode_takes_a_replica(void** state) {
  // Without require_master (redis:// URLs) no ROLE is asked: a replica is a fine server
  // for reads.
  auto* f = static_cast<Fixture*>(*state);
  rt::RedisAddress a;
  a.host = "127.0.0.1";
  a.port = f->replica_port;
  f->link = std::make_unique<rt::RedisLink>(f->base.get(), a, 1000, "plain");
  f->link->set_trouble_hook(Trouble::hook, &f->trouble);
  f->link->start();
  assert_true(f->wait([&] { return f->link->up(); }));
  assert_int_equal(f->trouble.calls, 0);
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  rt::log::set_level(rt::log::Level::error);  // connection warnings are expected here
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_waits_for_an_address_then_checks_role, setup, teardown),
      cmocka_unit_test_setup_teardown(test_moving_drops_pending_commands, setup, teardown),
      cmocka_unit_test_setup_teardown(test_readonly_drops_a_demoted_master, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_connection_is_trouble, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plain_mode_takes_a_replica, setup, teardown),
  };
  return cmocka_run_group_tests_name("server/redis_link", tests, nullptr, nullptr);
}
