// Unit tests of server/src/hub (the shared pub/sub connection) against a real redis-server
// started by the test on a free port: reference counting, linger and UNSUBSCRIBE, a channel
// wanted again while its UNSUBSCRIBE is in flight (a hiredis 0.14 pitfall), fan-out,
// invalid messages, and the loss of the connection.
#include "cmocka_wrap.hpp"

#include <functional>

#include "hub.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "protocol/protocol.hpp"
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
  std::unique_ptr<rt::RedisLink> sub, cmd;
  std::unique_ptr<rt::Hub> hub;

  bool wait_for(const std::function<bool()>& pred, uint64_t ms = 5000) {
    return rt_test::run_until(base.get(), pred, ms);
  }

  void publish(const std::string& channel, const std::string& msg) {
    std::string name = hub->pubsub_name(channel);
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
  void on_redis_head(size_t, uint64_t) noexcept override {}  // no mirrors here (no scripts)
  void on_fence(bool ok) noexcept override { fences.push_back(ok); }
  std::vector<bool> fences;
};

// One registration (the hub links it into the channel's list; it must stay put).
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
  rt::RedisAddress addr;
  addr.host = "127.0.0.1";
  addr.port = f->port;
  f->sub = std::make_unique<rt::RedisLink>(f->base.get(), addr, 2000, "test/pubsub");
  f->cmd = std::make_unique<rt::RedisLink>(f->base.get(), addr, 2000, "test/command");
  f->hub = std::make_unique<rt::Hub>(f->base.get(), *f->sub, f->cmd.get(), nullptr, "channel:", 2000, "test");
  f->sub->set_listener(f->hub.get());
  f->sub->start();
  f->cmd->start();
  if (!f->wait_for([f] { return f->hub->up() && f->cmd->up(); }, 10000)) return -1;
  *state = f;
  return 0;
}

int teardown(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->cmd.reset();
  f->sub.reset();
  f->hub.reset();
  stop_redis(f->redis);
  delete f;
  return 0;
}

void test_refcount_and_fanout(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  Recorder a, b;
  Reg ra(&a, 3), rb(&b, 0);
  int64_t g0 = subscribed_gauge();
  assert_int_equal(int(f.hub->add("news", &ra.link)), int(rt::Hub::AddResult::pending));
  assert_true(ra.link.linked());
  assert_string_equal(f.hub->channel_of(ra.link).c_str(), "news");
  assert_true(f.wait_for([&] { return a.subscribed.size() == 1; }));
  assert_int_equal(a.subscribed[0], 3);
  assert_int_equal(subscribed_gauge(), g0 + 1);
  // A second listener shares the confirmed subscription.
  assert_int_equal(int(f.hub->add("news", &rb.link)), int(rt::Hub::AddResult::confirmed));
  assert_int_equal(f.hub->channel_count(), 1);

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

  f.hub->remove(&ra.link);
  assert_false(ra.link.linked());
  assert_string_equal(f.hub->channel_of(ra.link).c_str(), "");
  f.publish("news", "{\"id\":10,\"payload\":3}");
  assert_true(f.wait_for([&] { return b.messages.size() == 3; }));
  assert_int_equal(a.messages.size(), 2);
  f.hub->remove(&rb.link);
  f.hub->remove(&rb.link);  // removing twice is harmless
  // Lingers subscribed for a while, then goes.
  assert_int_equal(subscribed_gauge(), g0 + 1);
  assert_true(f.wait_for([&] { return f.hub->channel_count() == 0; }, 6000));
  assert_int_equal(subscribed_gauge(), g0);
}

void test_wanted_again_while_unsubscribing(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  for (int round = 0; round < 3; round++) {
    Recorder a, b;
    Reg ra(&a, 0), rb(&b, 5);
    int64_t g0 = subscribed_gauge();
    f.hub->add("flip", &ra.link);
    assert_true(f.wait_for([&] { return a.subscribed.size() == 1; }));
    f.hub->remove(&ra.link);
    // The gauge drops the moment the hub sends UNSUBSCRIBE; re-add before its reply.
    assert_true(f.wait_for([&] { return subscribed_gauge() == g0; }, 6000));
    assert_int_equal(f.hub->channel_count(), 1);  // still known: its UNSUBSCRIBE is in flight
    rt::Hub::AddResult r = f.hub->add("flip", &rb.link);
    assert_true(r == rt::Hub::AddResult::pending);
    assert_true(f.wait_for([&] { return b.subscribed.size() == 1; }));
    assert_int_equal(b.subscribed[0], 5);
    f.publish("flip", "{\"id\":1,\"payload\":true}");
    assert_true(f.wait_for([&] { return b.messages.size() == 1; }));
    f.hub->remove(&rb.link);
    assert_true(f.wait_for([&] { return f.hub->channel_count() == 0; }, 6000));
  }
  assert_true(f.hub->up());
}

void test_connection_lost(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  Recorder a, b;
  Reg ax(&a, 0), ay(&a, 1), by(&b, 0);
  f.hub->add("x", &ax.link);
  f.hub->add("y", &ay.link);
  f.hub->add("y", &by.link);
  assert_true(f.wait_for([&] { return a.subscribed.size() == 2 && b.subscribed.size() == 1; }));
  stop_redis(f.redis);
  // Every listener hears about the loss exactly once; the hub forgot them.
  assert_true(f.wait_for([&] { return a.lost == 1 && b.lost == 1; }));
  assert_false(f.hub->up());
  assert_int_equal(f.hub->channel_count(), 0);
  assert_false(ax.link.linked() || ay.link.linked() || by.link.linked());
  Recorder c;
  Reg cz(&c, 0);
  assert_int_equal(int(f.hub->add("z", &cz.link)), int(rt::Hub::AddResult::unavailable));
  assert_false(cz.link.linked());
  f.hub->remove(&ax.link);  // no-op
  // Redis comes back on the same port: the hub reconnects by itself.
  f.redis = start_redis(f.port);
  assert_true(f.wait_for([&] { return f.hub->up(); }, 10000));
  assert_int_equal(int(f.hub->add("z", &cz.link)), int(rt::Hub::AddResult::pending));
  assert_true(f.wait_for([&] { return c.subscribed.size() == 1; }));
  assert_int_equal(a.lost, 1);
  f.hub->remove(&cz.link);
}

void test_fence_comes_after_earlier_messages(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  Recorder a;
  Reg ra(&a, 0);
  f.hub->add("fenced", &ra.link);
  assert_true(f.wait_for([&] { return a.subscribed.size() == 1; }));
  for (uint64_t id = 1; id <= 20; id++) {
    // A message is published (not yet delivered: the loop has not run), then a fence is
    // asked for: it must pass only after that message reached the listener.
    std::string name = f.hub->pubsub_name("fenced");
    std::string msg = "{\"id\":" + std::to_string(id) + ",\"payload\":0}";
    const char* argv[] = {"PUBLISH", name.c_str(), msg.c_str()};
    size_t lens[] = {7, name.size(), msg.size()};
    assert_true(f.cmd->command([](redisReply*, void*) noexcept {}, nullptr, 3, argv, lens));
    size_t before = a.fences.size();
    assert_true(f.hub->fence(&a));
    assert_true(f.wait_for([&] { return a.fences.size() == before + 1; }));
    assert_true(a.fences.back());
    assert_int_equal(a.messages.size(), id);
    assert_int_equal(a.messages.back().second, id);
  }
  // A cancelled fence never calls back; fences asked for together share one PUBLISH.
  Recorder b;
  assert_true(f.hub->fence(&a));
  assert_true(f.hub->fence(&b));
  f.hub->cancel_fence(&a);
  size_t fa = a.fences.size();
  assert_true(f.wait_for([&] { return b.fences.size() == 1; }));
  f.wait_for([] { return false; }, 100);
  assert_int_equal(a.fences.size(), fa);
  f.hub->remove(&ra.link);
  // No Redis: no fence.
  stop_redis(f.redis);
  f.redis = -1;
  assert_true(f.wait_for([&] { return !f.hub->up(); }));
  assert_false(f.hub->fence(&a));
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  rt::log::set_level(rt::log::Level::error);  // connection-loss warnings are expected here
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refcount_and_fanout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wanted_again_while_unsubscribing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_lost, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fence_comes_after_earlier_messages, setup, teardown),
  };
  return cmocka_run_group_tests_name("server/hub (with a real redis-server)", tests, nullptr, nullptr);
}
