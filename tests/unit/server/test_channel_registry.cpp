// Unit tests of server/src/channels/channel_registry over the standalone pub/sub connection
// and a real redis-server started by the test on a free port (no mirror driver: mirrors are
// test_mirror_keeper's): reference counting, linger and UNSUBSCRIBE, the cap on lingering
// channels, a channel wanted again while its UNSUBSCRIBE is in flight, fan-out, invalid
// messages, and the loss of the connection.
#include "cmocka_wrap.hpp"

#include <functional>

#include "channel_registry.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "protocol/keys.hpp"
#include "protocol/protocol.hpp"
#include "pubsub_connection.hpp"
#include "redis_link.hpp"
#include "redis_process.hpp"

namespace {

using rt_test::free_port;
using rt_test::start_redis;
using rt_test::stop_redis;

struct Fixture {
  int port = 0;
  pid_t redis = -1;
  rt::EventBasePtr base{event_base_new()};
  rt::proto::Keys keys{"channel:"};
  std::unique_ptr<rt::RedisLink> sub, cmd;
  std::unique_ptr<rt::StandalonePubSub> conn;
  std::unique_ptr<rt::ChannelRegistry> reg;

  bool wait_for(const std::function<bool()>& pred, uint64_t ms = 5000) {
    return rt_test::run_until(base.get(), pred, ms);
  }

  void publish(const std::string& channel, const std::string& msg) {
    std::string name = keys.pubsub(channel);
    const char* argv[] = {"PUBLISH", name.c_str(), msg.c_str()};
    size_t lens[] = {7, name.size(), msg.size()};
    static int done;
    done = 0;
    assert_true(cmd->command([](redisReply*, void*) noexcept { done = 1; }, nullptr, 3, argv, lens));
    assert_true(wait_for([] { return done == 1; }));
  }
};

struct Recorder : rt::HubListener {
  std::vector<size_t> subscribed;
  std::vector<std::pair<size_t, uint64_t>> messages;
  int lost = 0;
  void on_subscribed(size_t idx) noexcept override { subscribed.push_back(idx); }
  std::vector<uint64_t> prevs;  // the prev of each message, in the order of `messages`
  void on_message(size_t idx, const rt::SharedMessagePtr& m) noexcept override {
    messages.emplace_back(idx, m->msg.id);
    prevs.push_back(m->msg.prev);
  }
  void on_hub_lost() noexcept override { lost++; }
  void on_redis_head(size_t, uint64_t) noexcept override {}  // no mirrors here (no driver)
  void on_fence(bool ok) noexcept override { fences.push_back(ok); }
  std::vector<bool> fences;
};

// One registration (the registry links it into the channel's list; it must stay put).
struct Reg {
  rt::HubLink link;
  Reg(rt::HubListener* l, uint32_t idx) {
    link.listener = l;
    link.idx = idx;
  }
};

int64_t subscribed_gauge() { return rt::metrics::get().subscribed_channels.load(); }

int setup(void** state) {
  auto* f = new Fixture;
  f->port = free_port();
  f->redis = start_redis(f->port);
  if (f->redis <= 0) return -1;
  f->sub = rt_test::make_link(f->base.get(), f->port, 2000, "test/pubsub");
  f->cmd = rt_test::make_link(f->base.get(), f->port, 2000, "test/command");
  f->conn = std::make_unique<rt::StandalonePubSub>(f->base.get(), *f->sub, f->cmd.get(), f->keys, 2000, "test");
  f->reg = std::make_unique<rt::ChannelRegistry>(f->base.get(), *f->conn);
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
  f->reg.reset();
  f->conn.reset();
  stop_redis(f->redis);
  delete f;
  return 0;
}

void test_refcount_and_fanout(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  Recorder a, b;
  Reg ra(&a, 3), rb(&b, 0);
  int64_t g0 = subscribed_gauge();
  assert_int_equal(int(f.reg->add("news", &ra.link)), int(rt::ChannelRegistry::AddResult::pending));
  assert_true(ra.link.linked());
  assert_string_equal(f.reg->channel_of(ra.link).c_str(), "news");
  assert_true(f.wait_for([&] { return a.subscribed.size() == 1; }));
  assert_int_equal(a.subscribed[0], 3);
  assert_int_equal(subscribed_gauge(), g0 + 1);
  // A second listener shares the confirmed subscription.
  assert_int_equal(int(f.reg->add("news", &rb.link)), int(rt::ChannelRegistry::AddResult::confirmed));
  assert_int_equal(f.reg->size(), 1);

  f.publish("news", "{\"id\":1764612345678901,\"prev\":1764612345000000,\"payload\":{\"x\":1}}");
  assert_true(f.wait_for([&] { return a.messages.size() == 1 && b.messages.size() == 1; }));
  assert_int_equal(a.messages[0].first, 3);
  assert_int_equal(a.messages[0].second, 1764612345678901);
  assert_int_equal(a.prevs[0], 1764612345000000);
  assert_int_equal(b.messages[0].first, 0);

  // Invalid message JSON is dropped and counted, never fanned out.
  uint64_t inv0 = rt::metrics::get().invalid_messages.load();
  f.publish("news", "{\"id\":1764612345678950,\"prev\":1764612345678901,\"payload\":nope}");
  f.publish("news", "{\"id\":1764612345678960,\"prev\":1764612345678960,\"payload\":1}");  // prev >= id
  f.publish("news", "{\"id\":9,\"payload\":2}");  // version 1 (no prev): counts as prev 8
  assert_true(f.wait_for([&] { return a.messages.size() == 2; }));
  assert_int_equal(a.messages[1].second, 9);
  assert_int_equal(a.prevs[1], 8);
  assert_int_equal(rt::metrics::get().invalid_messages.load(), inv0 + 2);

  // Another channel's messages do not reach these listeners.
  f.publish("other", "{\"id\":1,\"payload\":0}");
  f.wait_for([] { return false; }, 100);
  assert_int_equal(a.messages.size(), 2);

  f.reg->remove(&ra.link);
  assert_false(ra.link.linked());
  assert_string_equal(f.reg->channel_of(ra.link).c_str(), "");
  f.publish("news", "{\"id\":10,\"payload\":3}");
  assert_true(f.wait_for([&] { return b.messages.size() == 3; }));
  assert_int_equal(a.messages.size(), 2);
  f.reg->remove(&rb.link);
  f.reg->remove(&rb.link);  // removing twice is harmless
  // Lingers subscribed for a while, then goes.
  assert_int_equal(subscribed_gauge(), g0 + 1);
  assert_true(f.wait_for([&] { return f.reg->size() == 0; }, 6000));
  assert_int_equal(subscribed_gauge(), g0);
}

void test_wanted_again_while_unsubscribing(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  for (int round = 0; round < 3; round++) {
    Recorder a, b;
    Reg ra(&a, 0), rb(&b, 5);
    int64_t g0 = subscribed_gauge();
    f.reg->add("flip", &ra.link);
    assert_true(f.wait_for([&] { return a.subscribed.size() == 1; }));
    f.reg->remove(&ra.link);
    // The gauge drops the moment the registry unsubscribes; re-add before its reply.
    assert_true(f.wait_for([&] { return subscribed_gauge() == g0; }, 6000));
    // The registry forgot it; the wire still knows it: its UNSUBSCRIBE is in flight.
    assert_int_equal(f.reg->size(), 0);
    assert_int_equal(f.conn->wire_count(), 1);
    rt::ChannelRegistry::AddResult r = f.reg->add("flip", &rb.link);
    assert_true(r == rt::ChannelRegistry::AddResult::pending);
    assert_true(f.wait_for([&] { return b.subscribed.size() == 1; }));
    assert_int_equal(b.subscribed[0], 5);
    f.publish("flip", "{\"id\":1,\"payload\":true}");
    assert_true(f.wait_for([&] { return b.messages.size() == 1; }));
    f.reg->remove(&rb.link);
    assert_true(f.wait_for([&] { return f.reg->size() == 0; }, 6000));
  }
  assert_true(f.conn->up());
}

void test_connection_lost(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  Recorder a, b;
  Reg ax(&a, 0), ay(&a, 1), by(&b, 0);
  f.reg->add("x", &ax.link);
  f.reg->add("y", &ay.link);
  f.reg->add("y", &by.link);
  assert_true(f.wait_for([&] { return a.subscribed.size() == 2 && b.subscribed.size() == 1; }));
  stop_redis(f.redis);
  // Every listener hears about the loss exactly once; the registry forgot them.
  assert_true(f.wait_for([&] { return a.lost == 1 && b.lost == 1; }));
  assert_false(f.conn->up());
  assert_int_equal(f.reg->size(), 0);
  assert_false(ax.link.linked() || ay.link.linked() || by.link.linked());
  Recorder c;
  Reg cz(&c, 0);
  assert_int_equal(int(f.reg->add("z", &cz.link)), int(rt::ChannelRegistry::AddResult::unavailable));
  assert_false(cz.link.linked());
  f.reg->remove(&ax.link);  // no-op
  // Redis comes back on the same port: the connection comes back by itself.
  f.redis = start_redis(f.port);
  assert_true(f.wait_for([&] { return f.conn->up(); }, 10000));
  assert_int_equal(int(f.reg->add("z", &cz.link)), int(rt::ChannelRegistry::AddResult::pending));
  assert_true(f.wait_for([&] { return c.subscribed.size() == 1; }));
  assert_int_equal(a.lost, 1);
  f.reg->remove(&cz.link);
}

void test_lingering_channels_are_capped(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  // One more lingering channel than the cap: the last one to go idle is unsubscribed at
  // once, the others linger.
  const size_t n = rt::ChannelRegistry::kMaxIdle + 1;
  Recorder a;
  std::vector<std::unique_ptr<Reg>> regs;
  for (size_t i = 0; i < n; i++) {
    regs.push_back(std::make_unique<Reg>(&a, uint32_t(i)));
    assert_int_equal(int(f.reg->add("c" + std::to_string(i), &regs.back()->link)),
                     int(rt::ChannelRegistry::AddResult::pending));
  }
  assert_true(f.wait_for([&] { return a.subscribed.size() == n; }, 20000));
  for (auto& r : regs) f.reg->remove(&r->link);
  assert_int_equal(f.reg->size(), rt::ChannelRegistry::kMaxIdle);
  assert_false(regs.back()->link.linked());
  // A lingering channel is still subscribed: a new listener gets it confirmed at once.
  Reg again(&a, 0);
  assert_int_equal(int(f.reg->add("c0", &again.link)), int(rt::ChannelRegistry::AddResult::confirmed));
  f.reg->remove(&again.link);
  assert_true(f.wait_for([&] { return f.reg->size() == 0; }, 10000));
  assert_true(f.conn->up());
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  rt::log::set_level(rt::log::Level::error);  // connection-loss warnings are expected here
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refcount_and_fanout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wanted_again_while_unsubscribing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_lost, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lingering_channels_are_capped, setup, teardown),
  };
  return cmocka_run_group_tests_name("server/channels/channel_registry (with a real redis-server)", tests, nullptr, nullptr);
}
