// Unit tests of server/src/redis/pubsub_connection (StandalonePubSub, the pub/sub wire)
// against a real redis-server started by the test on a free port: confirmations and
// messages, UNSUBSCRIBE, a subscribe() while the channel's UNSUBSCRIBE is in flight (a
// hiredis 0.14 pitfall), the sentinel keeping the connection in subscribe mode, fences,
// drop() and the loss of the connection; a silent connection (through a TCP proxy that
// stops passing Redis's bytes on) is dropped by the SUBSCRIBE timeout and the liveness ping.
#include "cmocka_wrap.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include <functional>
#include <memory>

#include "log.hpp"
#include "metrics.hpp"
#include "mirror_timing.hpp"
#include "protocol/keys.hpp"
#include "pubsub_connection.hpp"
#include "redis_link.hpp"
#include "redis_process.hpp"

namespace {

using rt_test::free_port;
using rt_test::start_redis;
using rt_test::stop_redis;

// Records what the connection tells its sink, and the order of sink and fence events.
struct Sink : rt::PubSubConnection::Sink, rt::FenceWaiter {
  std::vector<std::string> subscribed;
  std::vector<std::pair<std::string, std::string>> messages;
  std::vector<bool> fences;
  std::vector<std::string> events;  // "fence" / "lost", in order
  int lost = 0;
  void on_subscribed(const std::string& ch) noexcept override { subscribed.push_back(ch); }
  void on_message(const std::string& ch, const char* data, size_t len) noexcept override {
    messages.emplace_back(ch, std::string(data, len));
  }
  void on_lost() noexcept override {
    lost++;
    events.push_back("lost");
  }
  void on_fence(bool ok) noexcept override {
    fences.push_back(ok);
    events.push_back("fence");
  }
};


// A loopback TCP proxy on the test's event loop in front of Redis. While `mute`, what Redis
// sends is swallowed: the connection looks alive but delivers nothing (a half-open peer).
struct Proxy {
  int port = 0, upstream = 0;
  bool mute = false;
  int accepted = 0;
  event_base* base;
  evconnlistener* lst = nullptr;
  struct Pair {
    Proxy* p;
    bufferevent* client;
    bufferevent* server;
  };
  std::vector<std::unique_ptr<Pair>> pairs;

  Proxy(event_base* b, int up) : upstream(up), base(b) {
    port = free_port();
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    lst = evconnlistener_new_bind(base, on_accept, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
                                  reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  ~Proxy() {
    for (auto& pr : pairs) close_pair(pr.get());
    if (lst) evconnlistener_free(lst);
  }
  static void close_pair(Pair* pr) {
    if (pr->client) bufferevent_free(pr->client);
    if (pr->server) bufferevent_free(pr->server);
    pr->client = pr->server = nullptr;
  }
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* self = static_cast<Proxy*>(arg);
    self->accepted++;
    auto pr = std::make_unique<Pair>();
    pr->p = self;
    pr->client = bufferevent_socket_new(self->base, fd, BEV_OPT_CLOSE_ON_FREE);
    pr->server = bufferevent_socket_new(self->base, -1, BEV_OPT_CLOSE_ON_FREE);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(self->upstream));
    bufferevent_setcb(pr->client, on_client_read, nullptr, on_event, pr.get());
    bufferevent_setcb(pr->server, on_server_read, nullptr, on_event, pr.get());
    bufferevent_enable(pr->client, EV_READ | EV_WRITE);
    bufferevent_enable(pr->server, EV_READ | EV_WRITE);
    bufferevent_socket_connect(pr->server, reinterpret_cast<sockaddr*>(&a), sizeof a);
    self->pairs.push_back(std::move(pr));
  }
  static void on_client_read(bufferevent* bev, void* arg) {
    auto* pr = static_cast<Pair*>(arg);
    bufferevent_write_buffer(pr->server, bufferevent_get_input(bev));
  }
  static void on_server_read(bufferevent* bev, void* arg) {
    auto* pr = static_cast<Pair*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    if (pr->p->mute) evbuffer_drain(in, evbuffer_get_length(in));
    else bufferevent_write_buffer(pr->client, in);
  }
  static void on_event(bufferevent*, short what, void* arg) {
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) close_pair(static_cast<Pair*>(arg));
  }
};

struct Fixture {
  int port = 0;
  pid_t redis = -1;
  rt::EventBasePtr base{event_base_new()};
  rt::proto::Keys keys{"channel:"};
  std::unique_ptr<rt::RedisLink> sub, cmd;
  std::unique_ptr<rt::StandalonePubSub> conn;
  Sink sink;

  bool wait_for(const std::function<bool()>& pred, uint64_t ms = 5000) {
    return rt_test::run_until(base.get(), pred, ms);
  }
  // PUBLISH on the command link, without running the loop.
  void publish_async(const std::string& channel, const std::string& msg) {
    std::string name = keys.pubsub(channel);
    const char* argv[] = {"PUBLISH", name.c_str(), msg.c_str()};
    size_t lens[] = {7, name.size(), msg.size()};
    assert_true(cmd->command([](redisReply*, void*) noexcept {}, nullptr, 3, argv, lens));
  }
  void publish(const std::string& channel, const std::string& msg) {
    rt_test::command(port, {"PUBLISH", keys.pubsub(channel), msg});
  }
};

int setup(void** state) {
  auto* f = new Fixture;
  f->port = free_port();
  f->redis = start_redis(f->port);
  if (f->redis <= 0 || !rt_test::wait_ready(f->port)) return -1;
  f->sub = rt_test::make_link(f->base.get(), f->port, 2000, "test/pubsub");
  f->cmd = rt_test::make_link(f->base.get(), f->port, 2000, "test/command");
  f->conn = std::make_unique<rt::StandalonePubSub>(f->base.get(), *f->sub, f->cmd.get(), f->keys, 2000, "test");
  f->conn->set_sink(&f->sink);
  f->sub->start();
  f->cmd->start();
  if (!f->wait_for([f] { return f->conn->up() && f->cmd->up(); }, 10000)) return -1;
  *state = f;
  return 0;
}

int teardown(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->cmd.reset();
  f->sub.reset();
  f->conn.reset();
  stop_redis(f->redis);
  delete f;
  return 0;
}

void test_subscribe_message_unsubscribe(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  assert_false(f.conn->unsubscribe("a"));  // never subscribed
  assert_true(f.conn->subscribe("a"));
  assert_false(f.conn->unsubscribe("a"));  // not confirmed yet
  assert_true(f.sink.subscribed.empty());  // never from inside subscribe()
  assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 1; }));
  assert_string_equal(f.sink.subscribed[0].c_str(), "a");
  assert_int_equal(f.conn->wire_count(), 1);

  uint64_t m0 = rt::metrics::get().pubsub_messages.load();
  f.publish("a", "hello");
  f.publish("other", "not ours");
  assert_true(f.wait_for([&] { return f.sink.messages.size() == 1; }));
  assert_string_equal(f.sink.messages[0].first.c_str(), "a");
  assert_string_equal(f.sink.messages[0].second.c_str(), "hello");
  assert_int_equal(rt::metrics::get().pubsub_messages.load(), m0 + 1);

  // Unsubscribing the only channel: the sentinel keeps the connection in subscribe mode,
  // so it stays up and the next SUBSCRIBE is confirmed normally.
  assert_true(f.conn->unsubscribe("a"));
  assert_true(f.wait_for([&] { return f.conn->wire_count() == 0; }));
  f.publish("a", "late");
  assert_true(f.conn->subscribe("b"));
  assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 2; }));
  assert_string_equal(f.sink.subscribed[1].c_str(), "b");
  assert_int_equal(f.sink.messages.size(), 1);
  assert_true(f.conn->up());
  assert_int_equal(f.sink.lost, 0);
}

void test_subscribe_while_leaving(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  for (int round = 0; round < 3; round++) {
    f.sink.subscribed.clear();
    f.sink.messages.clear();
    assert_true(f.conn->subscribe("flip"));
    assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 1; }));
    // UNSUBSCRIBE and, before its reply, SUBSCRIBE again: sent only once the reply is back.
    assert_true(f.conn->unsubscribe("flip"));
    assert_true(f.conn->subscribe("flip"));
    assert_int_equal(f.conn->wire_count(), 1);
    assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 2; }));
    f.publish("flip", "m" + std::to_string(round));
    assert_true(f.wait_for([&] { return f.sink.messages.size() == 1; }));
    f.wait_for([] { return false; }, 100);
    assert_int_equal(f.sink.subscribed.size(), 2);  // exactly once per subscribe()
    assert_true(f.conn->unsubscribe("flip"));
    assert_true(f.wait_for([&] { return f.conn->wire_count() == 0; }));
  }
  assert_true(f.conn->up());
  assert_int_equal(f.sink.lost, 0);
}

void test_fence_comes_after_earlier_messages(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  assert_true(f.conn->subscribe("fenced"));
  assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 1; }));
  for (size_t i = 1; i <= 20; i++) {
    // A message is published (not yet delivered: the loop has not run), then a fence is
    // asked for: it must pass only after that message reached the sink.
    f.publish_async("fenced", "m" + std::to_string(i));
    size_t before = f.sink.fences.size();
    assert_true(f.conn->fence(&f.sink));
    assert_int_equal(f.sink.fences.size(), before);  // never from inside fence()
    assert_true(f.wait_for([&] { return f.sink.fences.size() == before + 1; }));
    assert_true(f.sink.fences.back());
    assert_int_equal(f.sink.messages.size(), i);
  }
  // A cancelled fence never calls back; fences asked for together share one PUBLISH.
  Sink other;
  assert_true(f.conn->fence(&f.sink));
  assert_true(f.conn->fence(&other));
  f.conn->cancel_fence(&f.sink);
  size_t fa = f.sink.fences.size();
  assert_true(f.wait_for([&] { return other.fences.size() == 1; }));
  f.wait_for([] { return false; }, 100);
  assert_int_equal(f.sink.fences.size(), fa);
}

void test_connection_lost(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  assert_true(f.conn->subscribe("x"));
  assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 1; }));
  // A fence pending when the connection goes fails first, then the sink hears the loss.
  assert_true(f.conn->fence(&f.sink));
  stop_redis(f.redis);
  f.redis = -1;
  assert_true(f.wait_for([&] { return f.sink.lost == 1; }));
  assert_int_equal(f.sink.events.size(), 2);
  assert_string_equal(f.sink.events[0].c_str(), "fence");
  assert_false(f.sink.fences.back());
  assert_false(f.conn->up());
  assert_false(f.conn->connected());
  assert_int_equal(f.conn->wire_count(), 0);
  assert_false(f.conn->subscribe("y"));
  assert_false(f.conn->fence(&f.sink));
  // Redis comes back on the same port: the connection comes back by itself.
  f.redis = start_redis(f.port);
  assert_true(f.wait_for([&] { return f.conn->up(); }, 10000));
  assert_true(f.conn->subscribe("y"));
  assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 2; }));
  assert_int_equal(f.sink.lost, 1);
}

void test_drop(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  assert_true(f.conn->subscribe("d"));
  assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 1; }));
  f.conn->drop("test");
  assert_int_equal(f.sink.lost, 0);  // not from inside drop()
  assert_true(f.wait_for([&] { return f.sink.lost == 1; }));
  assert_int_equal(f.conn->wire_count(), 0);
  assert_true(f.wait_for([&] { return f.conn->up(); }, 10000));  // reconnected
  assert_true(f.conn->subscribe("d"));
  assert_true(f.wait_for([&] { return f.sink.subscribed.size() == 2; }));
}


void test_silent_connection_is_dropped(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  // Its own connection through the proxy, with a short timeout.
  Proxy proxy(f.base.get(), f.port);
  assert_non_null(proxy.lst);
  const uint64_t timeout_ms = 300;
  Sink sink;
  auto link = rt_test::make_link(f.base.get(), proxy.port, timeout_ms, "test/proxied");
  auto conn = std::make_unique<rt::StandalonePubSub>(f.base.get(), *link, f.cmd.get(), f.keys, timeout_ms, "proxied");
  conn->set_sink(&sink);
  link->start();
  assert_true(f.wait_for([&] { return conn->up(); }));
  // A SUBSCRIBE that is never answered: dropped after the timeout.
  proxy.mute = true;
  assert_true(conn->subscribe("t"));
  uint64_t t0 = rt::now_ms();
  assert_true(f.wait_for([&] { return sink.lost == 1; }));
  assert_true(rt::now_ms() - t0 >= timeout_ms);
  proxy.mute = false;
  assert_true(f.wait_for([&] { return conn->up(); }, 10000));
  assert_int_equal(proxy.accepted, 2);
  // Nothing in flight, the connection just goes silent: the liveness ping (published on
  // the command link, due every kPingEveryMs) does not come back, and it is dropped.
  assert_true(conn->subscribe("t"));
  assert_true(f.wait_for([&] { return sink.subscribed.size() == 1; }));
  proxy.mute = true;
  assert_true(f.wait_for([&] { return sink.lost == 2; }, rt::timing::kPingEveryMs + 20 * timeout_ms));
  proxy.mute = false;
  assert_true(f.wait_for([&] { return conn->up(); }, 10000));
  link.reset();
  conn.reset();
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  rt::log::set_level(rt::log::Level::error);  // connection-loss warnings are expected here
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_subscribe_message_unsubscribe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscribe_while_leaving, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fence_comes_after_earlier_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_lost, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_silent_connection_is_dropped, setup, teardown),
  };
  return cmocka_run_group_tests_name("server/redis/pubsub_connection (with a real redis-server)", tests, nullptr,
                                     nullptr);
}
