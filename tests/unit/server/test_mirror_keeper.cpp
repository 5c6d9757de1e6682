// Unit tests of server/src/channels/mirror_keeper (seeds, verifications and the seed gate of
// the channel mirrors) with the channel registry, the standalone pub/sub connection, the
// real read.lua and a real redis-server started by the test on a free port. The channels'
// commands go through a recording ChannelCommands around the real command link: every
// command must name its channel and touch only that channel's keys (the Cluster seam).
#include "cmocka_wrap.hpp"

#include <algorithm>
#include <functional>
#include <memory>

#include "channel_commands.hpp"
#include "channel_registry.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "mirror_keeper.hpp"
#include "protocol/keys.hpp"
#include "pubsub_connection.hpp"
#include "redis_link.hpp"
#include "redis_process.hpp"
#include "scripts.hpp"

namespace {

using rt::ChannelMirror;
using rt_test::free_port;
using rt_test::start_redis;
using rt_test::stop_redis;

// The real command link, recording each call's channel and keys; `refuse` makes every call
// fail to send (as a link that is down would).
struct RecordingCommands : rt::ChannelCommands {
  rt::LinkCommands inner;
  std::vector<std::pair<std::string, std::vector<std::string>>> calls;  // channel, keys named
  bool refuse = false;
  explicit RecordingCommands(rt::RedisLink& l) : inner(l) {}
  bool up_for(const std::string& ch) const noexcept override { return inner.up_for(ch); }
  bool command_for(const std::string& ch, rt::RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                   const size_t* lens) noexcept override {
    std::vector<std::string> keys;
    for (int i = 1; i < argc; i++) keys.emplace_back(argv[i], lens[i]);  // GET <key>
    calls.emplace_back(ch, keys);
    return !refuse && inner.command_for(ch, fn, priv, argc, argv, lens);
  }
  bool script_for(const std::string& ch, rt::Script& s, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args, rt::RedisLink::ReplyFn fn, void* priv) noexcept override {
    calls.emplace_back(ch, keys);
    return !refuse && inner.script_for(ch, s, keys, args, fn, priv);
  }
};

struct Recorder : rt::HubListener {
  std::vector<std::string> events;  // "subscribed", "head:<n>", "message:<id>", in order
  int lost = 0;
  void on_subscribed(size_t) noexcept override { events.push_back("subscribed"); }
  void on_message(size_t, const rt::SharedMessagePtr& m) noexcept override {
    events.push_back("message:" + std::to_string(m->msg.id));
  }
  void on_hub_lost() noexcept override { lost++; }
  void on_redis_head(size_t, uint64_t n) noexcept override { events.push_back("head:" + std::to_string(n)); }
  void on_fence(bool) noexcept override {}
  bool saw(const std::string& e) const { return std::find(events.begin(), events.end(), e) != events.end(); }
  long index_of(const std::string& e) const { return std::find(events.begin(), events.end(), e) - events.begin(); }
};

struct Fixture {
  int port = 0;
  pid_t redis = -1;
  rt::EventBasePtr base{event_base_new()};
  rt::proto::Keys keys{"channel:"};
  rt::ScriptSet scripts;
  std::unique_ptr<rt::RedisLink> sub, cmd;
  std::unique_ptr<RecordingCommands> cmds;
  std::unique_ptr<rt::StandalonePubSub> conn;
  std::unique_ptr<rt::ChannelRegistry> reg;
  std::unique_ptr<rt::MirrorKeeper> keeper;

  bool wait_for(const std::function<bool()>& pred, uint64_t ms = 5000) {
    return rt_test::run_until(base.get(), pred, ms);
  }
  // Publishes with the real publish.lua (blocking, its own connection); the new id.
  uint64_t publish(const std::string& channel, const std::string& payload) {
    std::string id = rt_test::command(port, {"EVAL", scripts.publish.text, "3", keys.msg_id(channel),
                                             keys.backlog(channel), keys.pubsub(channel), payload, "10", "0"});
    return std::stoull(id);
  }
  // Every command so far named `channel` and touched only its keys (hash tag {channel}).
  void assert_calls_only_for(const std::string& channel) {
    assert_false(cmds->calls.empty());
    for (const auto& c : cmds->calls) {
      assert_string_equal(c.first.c_str(), channel.c_str());
      for (const auto& k : c.second) assert_true(k.find("{" + channel + "}") != std::string::npos);
    }
  }
};

int setup(void** state) {
  auto* f = new Fixture;
  std::string error;
  if (!f->scripts.load_files("server/lua", &error)) return -1;
  f->port = free_port();
  f->redis = start_redis(f->port);
  if (f->redis <= 0 || !rt_test::wait_ready(f->port)) return -1;
  f->sub = rt_test::make_link(f->base.get(), f->port, 2000, "test/pubsub");
  f->cmd = rt_test::make_link(f->base.get(), f->port, 2000, "test/command");
  f->cmds = std::make_unique<RecordingCommands>(*f->cmd);
  f->conn = std::make_unique<rt::StandalonePubSub>(f->base.get(), *f->sub, f->cmd.get(), f->keys, 2000, "test");
  f->reg = std::make_unique<rt::ChannelRegistry>(f->base.get(), *f->conn);
  f->keeper = std::make_unique<rt::MirrorKeeper>(*f->reg, f->cmds.get(), &f->scripts, f->keys);
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
  f->keeper.reset();
  f->reg.reset();
  f->conn.reset();
  f->cmds.reset();
  stop_redis(f->redis);
  delete f;
  return 0;
}

void test_seed_gate_then_decisions(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  uint64_t id1 = f.publish("s", "1");
  uint64_t id2 = f.publish("s", "2");
  Recorder a;
  rt::HubLink link;
  link.listener = &a;
  assert_int_equal(int(f.reg->add("s", &link)), int(rt::ChannelRegistry::AddResult::pending));
  assert_true(f.wait_for([&] { return a.saw("subscribed"); }));
  // The gate: the seed's head reached the listener before "subscribed" did.
  std::string head = "head:" + std::to_string(id2);
  assert_true(a.saw(head));
  assert_true(a.index_of(head) < a.index_of("subscribed"));
  assert_int_equal(a.index_of("subscribed"), long(a.events.size()) - 1);  // exactly once
  // A poll at N holds; one behind gets the newest message; anything else reads Redis.
  const rt::proto::Message* m = nullptr;
  assert_int_equal(int(f.reg->decide(link, id2, &m)), int(ChannelMirror::Decision::hold));
  assert_int_equal(int(f.reg->decide("s", id1, &m)), int(ChannelMirror::Decision::newest));
  assert_non_null(m);
  assert_int_equal(m->id, id2);
  assert_int_equal(int(f.reg->decide(link, id1 - 1, &m)), int(ChannelMirror::Decision::unknown));
  // A new listener of the seeded channel is confirmed at once.
  Recorder b;
  rt::HubLink lb;
  lb.listener = &b;
  assert_int_equal(int(f.reg->add("s", &lb)), int(rt::ChannelRegistry::AddResult::confirmed));
  // A message on pub/sub extends the mirror before the listeners hear it.
  uint64_t id3 = f.publish("s", "3");
  assert_true(f.wait_for([&] { return a.saw("message:" + std::to_string(id3)); }));
  assert_true(b.saw("message:" + std::to_string(id3)));
  assert_int_equal(int(f.reg->decide(link, id3, &m)), int(ChannelMirror::Decision::hold));
  f.reg->remove(&link);
  f.reg->remove(&lb);
  f.assert_calls_only_for("s");
}

void test_verification_notices_lost_history(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  uint64_t id = f.publish("v", "1");
  Recorder a;
  rt::HubLink link;
  link.listener = &a;
  f.reg->add("v", &link);
  assert_true(f.wait_for([&] { return a.saw("subscribed"); }));
  const rt::proto::Message* m = nullptr;
  assert_int_equal(int(f.reg->decide(link, id, &m)), int(ChannelMirror::Decision::hold));
  // History lost without a publish: pub/sub cannot tell, a verification does.
  uint64_t lost0 = rt::metrics::get().mirror_history_lost.load();
  rt_test::command(f.port, {"DEL", f.keys.msg_id("v"), f.keys.backlog("v")});
  assert_true(f.wait_for([&] { return a.saw("head:0"); }, 6000));
  assert_int_equal(rt::metrics::get().mirror_history_lost.load(), lost0 + 1);
  assert_int_not_equal(int(f.reg->decide(link, id, &m)), int(ChannelMirror::Decision::hold));
  // Seeded again at the new truth.
  assert_true(f.wait_for([&] { return f.reg->decide(link, 0, &m) == ChannelMirror::Decision::hold; }, 6000));
  f.reg->remove(&link);
  f.assert_calls_only_for("v");
}

void test_seed_not_sent(void** state) {
  auto& f = *static_cast<Fixture*>(*state);
  // A seed that cannot be sent: no gate, the listener is told at once, polls read Redis.
  f.cmds->refuse = true;
  Recorder a;
  rt::HubLink link;
  link.listener = &a;
  f.publish("r", "1");
  assert_int_equal(int(f.reg->add("r", &link)), int(rt::ChannelRegistry::AddResult::pending));
  assert_true(f.wait_for([&] { return a.saw("subscribed"); }));
  assert_int_equal(a.events.size(), 1);  // no head: nothing was read
  const rt::proto::Message* m = nullptr;
  assert_int_equal(int(f.reg->decide(link, 0, &m)), int(ChannelMirror::Decision::unknown));
  assert_false(f.cmds->calls.empty());  // it was tried, through the channel's seam
  // Commands work again: the next sweep seeds the mirror.
  f.cmds->refuse = false;
  assert_true(f.wait_for([&] { return a.events.size() == 2; }, 3000));
  assert_true(a.events[1].rfind("head:", 0) == 0);
  f.reg->remove(&link);
  f.assert_calls_only_for("r");
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  rt::log::set_level(rt::log::Level::error);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_seed_gate_then_decisions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verification_notices_lost_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seed_not_sent, setup, teardown),
  };
  return cmocka_run_group_tests_name("server/channels/mirror_keeper (with a real redis-server)", tests, nullptr,
                                     nullptr);
}
