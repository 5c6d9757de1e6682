// Unit tests of server/src/channels/hub (the facade over the pub/sub connection, the channel
// registry and the mirror keeper) against a real redis-server started by the test on a free
// port: both constructors wire the three together (a subscription, its seeded mirror, a
// fan-out message, a fence, the health), and the sentinel name is the hub's own.
#include "cmocka_wrap.hpp"

#include <functional>
#include <memory>

#include "hub.hpp"
#include "log.hpp"
#include "redis_link.hpp"
#include "redis_process.hpp"

namespace {

using rt::ChannelMirror;
using rt_test::free_port;
using rt_test::start_redis;
using rt_test::stop_redis;

struct Recorder : rt::HubListener {
  int subscribed = 0, lost = 0;
  std::vector<uint64_t> messages, heads;
  std::vector<bool> fences;
  void on_subscribed(size_t) noexcept override { subscribed++; }
  void on_message(size_t, const rt::SharedMessagePtr& m) noexcept override { messages.push_back(m->msg.id); }
  void on_hub_lost() noexcept override { lost++; }
  void on_redis_head(size_t, uint64_t n) noexcept override { heads.push_back(n); }
  void on_fence(bool ok) noexcept override { fences.push_back(ok); }
};

struct Fixture {
  int port = 0;
  pid_t redis = -1;
  rt::EventBasePtr base{event_base_new()};
  rt::ScriptSet scripts;
  std::unique_ptr<rt::RedisLink> sub, cmd;
  std::unique_ptr<rt::Hub> hub;
  bool wait_for(const std::function<bool()>& pred, uint64_t ms = 5000) {
    return rt_test::run_until(base.get(), pred, ms);
  }
};

Fixture* start(bool pluggable) {
  auto* f = new Fixture;
  std::string error;
  if (!f->scripts.load_files("server/lua", &error)) return nullptr;
  f->port = free_port();
  f->redis = start_redis(f->port);
  if (f->redis <= 0 || !rt_test::wait_ready(f->port)) return nullptr;
  f->sub = rt_test::make_link(f->base.get(), f->port, 2000, "test/pubsub");
  f->cmd = rt_test::make_link(f->base.get(), f->port, 2000, "test/command");
  if (pluggable) {
    rt::proto::Keys keys("channel:");
    f->hub = std::make_unique<rt::Hub>(
        f->base.get(), std::make_unique<rt::StandalonePubSub>(f->base.get(), *f->sub, f->cmd.get(), keys, 2000, "test"),
        std::make_unique<rt::LinkCommands>(*f->cmd), &f->scripts, "channel:");
  } else {
    f->hub = std::make_unique<rt::Hub>(f->base.get(), *f->sub, f->cmd.get(), &f->scripts, "channel:", 2000, "test");
  }
  f->sub->start();
  f->cmd->start();
  if (!f->wait_for([f] { return f->hub->up() && f->cmd->up(); }, 10000)) {
    stop_redis(f->redis);
    return nullptr;
  }
  return f;
}

int setup_standalone(void** state) { return (*state = start(false)) ? 0 : -1; }
int setup_pluggable(void** state) { return (*state = start(true)) ? 0 : -1; }

int teardown(void** state) {
  auto* f = static_cast<Fixture*>(*state);
  f->cmd.reset();
  f->sub.reset();
  f->hub.reset();
  stop_redis(f->redis);
  delete f;
  return 0;
}

void test_wired_together(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  Recorder a;
  rt::HubLink link;
  link.listener = &a;
  link.idx = 7;
  assert_int_equal(int(f.hub->add("w", &link)), int(rt::Hub::AddResult::pending));
  assert_string_equal(f.hub->channel_of(link).c_str(), "w");
  assert_true(f.wait_for([&] { return a.subscribed == 1; }));
  assert_int_equal(a.heads.size(), 1);  // the seed came first (the gate)
  assert_int_equal(a.heads[0], 0);
  assert_int_equal(f.hub->channel_count(), 1);
  const rt::proto::Message* m = nullptr;
  assert_int_equal(int(f.hub->decide(link, 0, &m)), int(ChannelMirror::Decision::hold));
  assert_int_equal(int(f.hub->decide("w", 0, &m)), int(ChannelMirror::Decision::hold));
  assert_int_equal(int(f.hub->decide("nope", 0, &m)), int(ChannelMirror::Decision::unknown));

  rt_test::command(f.port, {"PUBLISH", f.hub->pubsub_name("w"), "{\"id\":5,\"prev\":0,\"payload\":1}"});
  assert_true(f.hub->fence(&a));
  assert_true(f.wait_for([&] { return a.fences.size() == 1; }));
  assert_true(a.fences[0]);
  assert_int_equal(a.messages.size(), 1);  // the fence passed after the earlier message
  assert_int_equal(a.messages[0], 5);
  assert_int_equal(int(f.hub->decide(link, 5, &m)), int(ChannelMirror::Decision::hold));
  f.hub->remove(&link);
  assert_false(link.linked());

  // The sentinel is the hub's own channel: "{!rt-hub.<tag>}", not a valid channel name.
  std::string subs = rt_test::command(f.port, {"PUBSUB", "CHANNELS", "*!rt-hub.test*"});
  assert_string_equal(subs.c_str(), "channel:{!rt-hub.test}:pubsub");
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  rt::log::set_level(rt::log::Level::error);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_wired_together, setup_standalone, teardown),
      cmocka_unit_test_setup_teardown(test_wired_together, setup_pluggable, teardown),
  };
  return cmocka_run_group_tests_name("server/channels/hub (with a real redis-server)", tests, nullptr, nullptr);
}
