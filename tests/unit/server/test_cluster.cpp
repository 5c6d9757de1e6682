// Module tests of server/src/redis/cluster against a real Redis Cluster (3 masters started
// by the test, tests/unit/server/cluster_process.hpp): commands routed to every master,
// MOVED after a slot moved, ASK while it moves, scripts per node (NOSCRIPT -> EVAL),
// publish.lua's SPUBLISH; the sharded subscriber's confirmations, messages, refusal on the
// wrong node (MOVED), the server's own sunsubscribe when the slot moves away, and the loss
// of its node.
#include "cmocka_wrap.hpp"

#include <algorithm>
#include <memory>

#include "cluster_links.hpp"
#include "cluster_pubsub.hpp"
#include "cluster_process.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "protocol/keys.hpp"
#include "scripts.hpp"
#include "shard_subscriber.hpp"

namespace {

using rt::cluster::key_slot;

struct Reply {
  bool called = false;
  int type = 0;
  long long integer = 0;
  std::string text;
  static void fn(redisReply* r, void* priv) noexcept {
    auto* self = static_cast<Reply*>(priv);
    self->called = true;
    self->type = r ? r->type : -1;
    if (r && r->type == REDIS_REPLY_INTEGER) self->integer = r->integer;
    if (r && r->str) self->text.assign(r->str, r->len);
  }
};

struct Events final : rt::ShardSubscriber::Listener {
  int up = 0, down = 0;
  std::vector<std::string> subscribed, failed, unsub_ours, unsub_server, messages;
  void on_shard_up(rt::ShardSubscriber&) noexcept override { up++; }
  void on_shard_down(rt::ShardSubscriber&) noexcept override { down++; }
  void on_ssubscribed(rt::ShardSubscriber&, std::string_view ch) noexcept override { subscribed.emplace_back(ch); }
  void on_ssubscribe_failed(rt::ShardSubscriber&, std::string_view ch, std::string_view e) noexcept override {
    failed.push_back(std::string(ch) + " " + std::string(e));
  }
  void on_sunsubscribed(rt::ShardSubscriber&, std::string_view ch, bool by_server) noexcept override {
    (by_server ? unsub_server : unsub_ours).emplace_back(ch);
  }
  void on_smessage(rt::ShardSubscriber&, std::string_view ch, std::string_view m) noexcept override {
    messages.push_back(std::string(ch) + " " + std::string(m));
  }
};

struct PubSubEvents final : rt::PubSubConnection::Sink, rt::FenceWaiter {
  std::vector<std::string> subscribed, lost_channels, messages;
  int lost = 0, fences_ok = 0, fences_failed = 0;
  void on_subscribed(const std::string& ch) noexcept override { subscribed.push_back(ch); }
  void on_message(const std::string& ch, const char* d, size_t n) noexcept override {
    messages.push_back(ch + " " + std::string(d, n));
  }
  void on_channel_lost(const std::string& ch) noexcept override { lost_channels.push_back(ch); }
  void on_lost() noexcept override { lost++; }
  void on_fence(bool ok) noexcept override { (ok ? fences_ok : fences_failed)++; }
  size_t count(const std::vector<std::string>& v, const std::string& x) const {
    return size_t(std::count(v.begin(), v.end(), x));
  }
};

struct World : rt::ClusterLinks::Listener {
  rt_test::Cluster cluster;
  std::unique_ptr<rt::ClusterPubSub> pubsub;
  PubSubEvents events;  // the sink of `pubsub` (outlives every test)
  PubSubEvents& fresh_events() {
    events = PubSubEvents();
    pubsub->set_sink(&events);
    return events;
  }
  void on_cluster_map() noexcept override {
    if (pubsub) pubsub->on_cluster_map();
  }
  void on_cluster_ask(uint16_t slot, const rt::cluster::NodeAddr&) noexcept override {
    if (pubsub) pubsub->on_cluster_ask(slot);
  }
  rt::EventBasePtr base{event_base_new()};
  rt::ScriptSet scripts;
  std::unique_ptr<rt::ClusterLinks> links;
  bool wait(const std::function<bool()>& pred, uint64_t ms = 8000) { return rt_test::run_until(base.get(), pred, ms); }

  // A key (with `prefix`) whose slot the master on `port` serves.
  std::string key_on(int port, const std::string& prefix) const {
    for (int i = 0; i < 100000; i++) {
      std::string k = prefix + std::to_string(i);
      if (cluster.owner(key_slot(k)) == port) return k;
    }
    return "";
  }
  Reply run(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
    Reply r;
    bool sent = links->command_for_key(args.size() > 1 ? args[1] : args[0], Reply::fn, &r, int(args.size()),
                                       argv.data(), lens.data());
    assert_true(sent);
    assert_false(r.called);  // never from inside command()
    assert_true(wait([&] { return r.called; }));
    return r;
  }
};

World* world = nullptr;

int group_setup(void**) {
  rt::log::set_level(getenv("RT_TEST_LOG") ? rt::log::Level::debug : rt::log::Level::error);
  world = new World();
  if (!world->cluster.start(3)) return -1;
  std::string err;
  if (!world->scripts.load_files(rt::find_lua_dir(""), &err)) return -1;
  rt::RedisAddress a;
  a.cluster_seeds.push_back({"127.0.0.1", world->cluster.ports[1]});
  world->links = std::make_unique<rt::ClusterLinks>(world->base.get(), a, 2000, "t", &world->scripts);
  world->links->set_listener(world);
  world->pubsub = std::make_unique<rt::ClusterPubSub>(world->base.get(), *world->links, a, rt::proto::Keys(), 2000, "t");
  world->links->start();
  if (!world->wait([] { return world->links->ready() && world->pubsub->up(); })) return -1;
  return 0;
}

int group_teardown(void**) {
  if (world && world->pubsub) world->pubsub->shut_down();
  if (world && world->links) world->links->shut_down();
  if (world) world->pubsub.reset();
  delete world;
  world = nullptr;
  return 0;
}

void test_routes_to_every_master(void**) {
  World& w = *world;
  assert_int_equal(w.links->map().masters.size(), 3);
  assert_int_equal(w.links->map().uncovered(), 0);
  for (int port : w.cluster.ports) {
    std::string key = w.key_on(port, "route-");
    assert_string_equal(w.run({"SET", key, "v" + std::to_string(port)}).text.c_str(), "OK");
    // The key is on its master (asked directly, no redirect).
    assert_string_equal(rt_test::command(port, {"GET", key}).c_str(), ("v" + std::to_string(port)).c_str());
    assert_string_equal(w.run({"GET", key}).text.c_str(), ("v" + std::to_string(port)).c_str());
    assert_int_equal(w.links->link_for_slot(key_slot(key))->port(), port);
  }
}

void test_moved_after_a_slot_moved(void**) {
  World& w = *world;
  int from = w.cluster.ports[0], to = w.cluster.ports[1];
  std::string key = w.key_on(from, "moved-");
  uint16_t slot = key_slot(key);
  assert_string_equal(w.run({"SET", key, "here"}).text.c_str(), "OK");
  assert_true(w.cluster.move_slot(slot, from, to, {key}));
  uint64_t moved = rt::metrics::get().cluster_moved.load();
  // The router still thinks `from`: MOVED takes it to `to`, and the map follows.
  assert_string_equal(w.run({"GET", key}).text.c_str(), "here");
  assert_true(rt::metrics::get().cluster_moved.load() > moved);
  assert_true(w.wait([&] { return w.links->link_for_slot(slot) && w.links->link_for_slot(slot)->port() == to; }));
  assert_string_equal(w.run({"GET", key}).text.c_str(), "here");
  // Back, for the other tests.
  assert_true(w.cluster.move_slot(slot, to, from, {key}));
}

void test_ask_while_a_slot_moves(void**) {
  World& w = *world;
  int from = w.cluster.ports[2], to = w.cluster.ports[0];
  std::string tag = w.key_on(from, "ask-");
  std::string k1 = "{" + tag + "}:a", k2 = "{" + tag + "}:b";
  uint16_t slot = key_slot(tag);
  assert_string_equal(w.run({"SET", k1, "one"}).text.c_str(), "OK");
  assert_string_equal(w.run({"SET", k2, "two"}).text.c_str(), "OK");
  assert_true(w.cluster.begin_move(slot, from, to));
  assert_true(w.cluster.migrate_key(k1, from, to));
  uint64_t asks = rt::metrics::get().cluster_ask.load();
  assert_string_equal(w.run({"GET", k1}).text.c_str(), "one");  // ASK -> ASKING + GET on `to`
  assert_true(rt::metrics::get().cluster_ask.load() > asks);
  assert_string_equal(w.run({"GET", k2}).text.c_str(), "two");  // still on `from`
  // The map did not change for an ASK.
  assert_int_equal(w.links->link_for_slot(slot)->port(), from);
  assert_true(w.cluster.migrate_key(k2, from, to));
  assert_true(w.cluster.end_move(slot, from, to));
  assert_string_equal(w.run({"GET", k2}).text.c_str(), "two");
  assert_true(w.cluster.move_slot(slot, to, from, {k1, k2}));
}

void test_tryagain_until_the_keys_are_together(void**) {
  World& w = *world;
  int from = w.cluster.ports[1], to = w.cluster.ports[2];
  std::string tag = w.key_on(from, "try-");
  std::string k1 = "{" + tag + "}:a", k2 = "{" + tag + "}:b";
  uint16_t slot = key_slot(tag);
  assert_string_equal(w.run({"SET", k1, "one"}).text.c_str(), "OK");
  assert_string_equal(w.run({"SET", k2, "two"}).text.c_str(), "OK");
  assert_true(w.cluster.begin_move(slot, from, to));
  assert_true(w.cluster.migrate_key(k1, from, to));
  // A two-key command while its keys are split: TRYAGAIN, waited out (not failed) until the
  // second key follows; then ASK takes it to `to`.
  const char* argv[] = {"MGET", k1.c_str(), k2.c_str()};
  size_t lens[] = {4, k1.size(), k2.size()};
  struct Arr {
    bool called = false;
    std::vector<std::string> vals;
    static void fn(redisReply* r, void* priv) noexcept {
      auto* self = static_cast<Arr*>(priv);
      self->called = true;
      if (r && r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++) self->vals.emplace_back(r->element[i]->str ? r->element[i]->str : "");
      else if (r && r->str)
        self->vals.emplace_back(r->str);
    }
  } a;
  assert_true(w.links->command_for_key(k1, Arr::fn, &a, 3, argv, lens));
  assert_false(w.wait([&] { return a.called; }, 300));  // parked, retrying
  assert_true(w.cluster.migrate_key(k2, from, to));
  assert_true(w.wait([&] { return a.called; }));
  assert_int_equal(a.vals.size(), 2);
  assert_string_equal(a.vals[0].c_str(), "one");
  assert_string_equal(a.vals[1].c_str(), "two");
  assert_true(w.cluster.end_move(slot, from, to));
  assert_true(w.cluster.move_slot(slot, to, from, {k1, k2}));
}

struct Sub {
  Events ev;
  std::unique_ptr<rt::ShardSubscriber> s;
  Sub(event_base* base, int port) {
    s = std::make_unique<rt::ShardSubscriber>(base, rt::cluster::NodeAddr{"127.0.0.1", port}, "", "", 2000,
                                              "sub", &ev);
    s->start();
  }
};

void test_publish_script_spublishes_and_noscript(void**) {
  World& w = *world;
  rt::proto::Keys keys;
  int port = w.cluster.ports[1];
  std::string ch = w.key_on(port, "pub-");
  Sub sub(w.base.get(), port);
  assert_true(w.wait([&] { return sub.s->up(); }));
  assert_true(sub.s->ssubscribe(keys.pubsub(ch)));
  assert_true(w.wait([&] { return sub.ev.subscribed.size() == 1; }));
  assert_int_equal(sub.s->server_count(), 1);

  std::vector<std::string> k{keys.msg_id(ch), keys.backlog(ch), keys.pubsub(ch)};
  Reply r;
  assert_true(w.links->run_script(w.scripts.publish, k, {"{\"x\":1}", "10", "0", "sharded"}, Reply::fn, &r));
  assert_true(w.wait([&] { return r.called; }));
  assert_int_equal(r.type, REDIS_REPLY_INTEGER);
  assert_true(w.wait([&] { return sub.ev.messages.size() == 1; }));
  assert_non_null(strstr(sub.ev.messages[0].c_str(), "\"payload\":{\"x\":1}"));
  assert_int_equal(strncmp(sub.ev.messages[0].c_str(), keys.pubsub(ch).c_str(), keys.pubsub(ch).size()), 0);

  // The node lost its script cache: NOSCRIPT, then EVAL on that node.
  assert_string_equal(rt_test::command(port, {"SCRIPT", "FLUSH"}).c_str(), "OK");
  Reply r2;
  assert_true(w.links->run_script(w.scripts.publish, k, {"2", "10", "0", "sharded"}, Reply::fn, &r2));
  assert_true(w.wait([&] { return r2.called; }));
  assert_int_equal(r2.type, REDIS_REPLY_INTEGER);
  assert_true(r2.integer > r.integer);
  assert_true(w.wait([&] { return sub.ev.messages.size() == 2; }));
  // Without the flag: PUBLISH (not received on the sharded subscription).
  Reply r3;
  assert_true(w.links->run_script(w.scripts.publish, k, {"3", "10", "0"}, Reply::fn, &r3));
  assert_true(w.wait([&] { return r3.called; }));
  assert_int_equal(r3.type, REDIS_REPLY_INTEGER);
  assert_false(w.wait([&] { return sub.ev.messages.size() > 2; }, 300));

  // Our own SUNSUBSCRIBE.
  assert_true(sub.s->sunsubscribe(keys.pubsub(ch)));
  assert_true(w.wait([&] { return sub.ev.unsub_ours.size() == 1; }));
  assert_true(sub.ev.unsub_server.empty());
  assert_int_equal(sub.s->server_count(), 0);
  sub.s->shut_down();
}

void test_subscriber_wrong_node_and_slot_moved(void**) {
  World& w = *world;
  rt::proto::Keys keys;
  int from = w.cluster.ports[0], to = w.cluster.ports[2];
  std::string ch = w.key_on(from, "mv-"), other = w.key_on(from, "stay-");
  uint16_t slot = key_slot(ch);
  assert_true(key_slot(other) != slot);
  Sub wrong(w.base.get(), to), sub(w.base.get(), from);
  assert_true(w.wait([&] { return wrong.s->up() && sub.s->up(); }));
  // The wrong node refuses with MOVED (the router's business to send it elsewhere).
  assert_true(wrong.s->ssubscribe(keys.pubsub(ch)));
  assert_true(w.wait([&] { return wrong.ev.failed.size() == 1; }));
  assert_non_null(strstr(wrong.ev.failed[0].c_str(), "MOVED"));
  assert_true(wrong.s->up());  // a refusal is no reason to drop the connection

  assert_true(sub.s->ssubscribe(keys.pubsub(ch)));
  assert_true(sub.s->ssubscribe(keys.pubsub(other)));
  assert_true(w.wait([&] { return sub.ev.subscribed.size() == 2; }));
  // The slot moves away: the server unsubscribes the channel by itself, the other stays.
  uint64_t before = rt::metrics::get().cluster_sunsubscribed.load();
  assert_true(w.cluster.move_slot(slot, from, to));
  assert_true(w.wait([&] { return sub.ev.unsub_server.size() == 1; }));
  assert_string_equal(sub.ev.unsub_server[0].c_str(), keys.pubsub(ch).c_str());
  assert_true(rt::metrics::get().cluster_sunsubscribed.load() > before);
  assert_int_equal(sub.s->server_count(), 1);
  assert_true(sub.s->up());
  // Messages keep flowing on the channel that stayed (the PING keeps answering too).
  assert_string_equal(rt_test::command(from, {"SPUBLISH", keys.pubsub(other), "m"}).c_str(), "1");
  assert_true(w.wait([&] { return sub.ev.messages.size() == 1; }));
  assert_true(w.cluster.move_slot(slot, to, from));
  wrong.s->shut_down();
  sub.s->shut_down();
}

void test_cluster_pubsub(void**) {
  World& w = *world;
  rt::proto::Keys keys;
  PubSubEvents& ev = w.fresh_events();
  assert_int_equal(w.pubsub->shard_count(), 3);
  // One channel on every master, plus one that will move.
  std::vector<std::string> chans;
  for (int port : w.cluster.ports) chans.push_back(w.key_on(port, "ps" + std::to_string(port) + "-"));
  std::string mover = w.key_on(w.cluster.ports[0], "psmove-");
  chans.push_back(mover);
  for (const auto& ch : chans) assert_true(w.pubsub->subscribe(ch));
  assert_true(ev.subscribed.empty());  // never from inside subscribe()
  assert_true(w.wait([&] { return ev.subscribed.size() == chans.size(); }));
  // publish.lua with SPUBLISH reaches each on its own shard; a fence comes back after them.
  for (const auto& ch : chans) {
    Reply r;
    std::vector<std::string> k{keys.msg_id(ch), keys.backlog(ch), keys.pubsub(ch)};
    assert_true(w.links->run_script(w.scripts.publish, k, {"\"" + ch + "\"", "10", "0", "sharded"}, Reply::fn, &r));
    assert_true(w.wait([&] { return r.called; }));
  }
  assert_true(w.pubsub->fence(&ev));
  assert_true(w.wait([&] { return ev.fences_ok == 1; }));
  assert_int_equal(ev.messages.size(), chans.size());  // all of them before the fence passed
  for (size_t i = 0; i < chans.size(); i++)
    assert_int_equal(ev.messages[i].compare(0, chans[i].size() + 1, chans[i] + " "), 0);

  // Unsubscribe, then subscribe again at once (while the SUNSUBSCRIBE is in flight).
  assert_true(w.pubsub->unsubscribe(chans[1]));
  assert_true(w.pubsub->subscribe(chans[1]));
  assert_true(w.wait([&] { return ev.count(ev.subscribed, chans[1]) == 2; }));
  assert_string_equal(rt_test::command(w.cluster.ports[1], {"SPUBLISH", keys.pubsub(chans[1]), "again"}).c_str(), "1");
  assert_true(w.wait([&] { return ev.count(ev.messages, chans[1] + " again") == 1; }));

  // The mover's slot goes to another master: only that channel is lost; then it can be
  // subscribed again, on its new master.
  uint16_t slot = key_slot(mover);
  int from = w.cluster.ports[0], to = w.cluster.ports[1];
  std::vector<std::string> mk{keys.msg_id(mover), keys.backlog(mover)};
  assert_true(w.cluster.move_slot(slot, from, to, mk));
  assert_true(w.wait([&] { return ev.lost_channels.size() == 1; }));
  assert_string_equal(ev.lost_channels[0].c_str(), mover.c_str());
  assert_true(w.wait([&] { return w.links->link_for_slot(slot) && w.links->link_for_slot(slot)->port() == to; }));
  assert_true(w.pubsub->subscribe(mover));
  assert_true(w.wait([&] { return ev.count(ev.subscribed, mover) == 2; }));
  assert_string_equal(rt_test::command(to, {"SPUBLISH", keys.pubsub(mover), "moved"}).c_str(), "1");
  assert_true(w.wait([&] { return ev.count(ev.messages, mover + " moved") == 1; }));
  assert_true(w.wait([&] { return w.pubsub->up(); }));
  assert_int_equal(ev.lost_channels.size(), 1);
  assert_int_equal(ev.lost, 0);
  assert_true(w.cluster.move_slot(slot, to, from, mk));
  assert_true(w.wait([&] { return ev.lost_channels.size() == 2; }));
  // A migration in progress (keys moved, slot not yet handed over): Redis says nothing to
  // subscribers, but the first ASK (here a read of the moved key) marks the slot: its
  // channel is lost and cannot subscribe until the new map names the new owner. (Another
  // channel and slot: one moved back and forth quickly leaves the nodes' config epochs
  // disagreeing for a while.)
  std::string mig = w.key_on(w.cluster.ports[2], "psmig-");
  uint16_t mslot = key_slot(mig);
  int mfrom = w.cluster.ports[2], mto = w.cluster.ports[0];
  {
    Reply r;
    std::vector<std::string> k{keys.msg_id(mig), keys.backlog(mig), keys.pubsub(mig)};
    assert_true(w.links->run_script(w.scripts.publish, k, {"1", "10", "0", "sharded"}, Reply::fn, &r));
    assert_true(w.wait([&] { return r.called; }));
  }
  size_t lost_before = ev.lost_channels.size();
  assert_true(w.pubsub->subscribe(mig));
  assert_true(w.wait([&] { return ev.count(ev.subscribed, mig) == 1; }));
  assert_true(w.cluster.begin_move(mslot, mfrom, mto));
  for (const auto& k : {keys.msg_id(mig), keys.backlog(mig)}) assert_true(w.cluster.migrate_key(k, mfrom, mto));
  assert_int_equal(w.run({"GET", keys.msg_id(mig)}).type, REDIS_REPLY_STRING);  // via ASK
  assert_int_equal(ev.lost_channels.size(), lost_before + 1);
  assert_string_equal(ev.lost_channels.back().c_str(), mig.c_str());
  assert_false(w.pubsub->subscribe(mig));  // refused while migrating
  assert_true(w.cluster.end_move(mslot, mfrom, mto));
  assert_int_equal(w.run({"GET", keys.msg_id(mig)}).type, REDIS_REPLY_STRING);  // MOVED: learnt
  assert_true(w.wait([&] { return w.links->link_for_slot(mslot) && w.links->link_for_slot(mslot)->port() == mto; }));
  assert_true(w.wait([&] { return w.pubsub->subscribe(mig); }));  // the new owner
  assert_true(w.wait([&] { return ev.count(ev.subscribed, mig) == 2; }));
  assert_true(w.pubsub->unsubscribe(mig));
  for (const auto& ch : chans)
    if (ch != mover) assert_true(w.pubsub->unsubscribe(ch));
  assert_true(w.wait([&] { return w.pubsub->wire_count() == 0; }));
}

// Last: a node is lost (SIGKILL).
void test_subscriber_and_router_when_a_node_dies(void**) {
  World& w = *world;
  int port = w.cluster.ports[2];
  Sub sub(w.base.get(), port);
  assert_true(w.wait([&] { return sub.s->up(); }));
  std::string key = w.key_on(port, "dead-");
  PubSubEvents& ev = w.fresh_events();
  std::string doomed = w.key_on(port, "doomed-"), spared = w.key_on(w.cluster.ports[1], "spared-");
  assert_true(w.pubsub->subscribe(doomed));
  assert_true(w.pubsub->subscribe(spared));
  assert_true(w.wait([&] { return ev.subscribed.size() == 2; }));
  rt_test::stop_redis(w.cluster.pids[2]);
  w.cluster.pids[2] = -1;
  assert_true(w.wait([&] { return sub.ev.down == 1; }));
  assert_false(sub.s->up());
  // Only the channel of the dead master is lost; the pub/sub is no longer up (health).
  assert_true(w.wait([&] { return ev.lost_channels.size() == 1; }));
  assert_string_equal(ev.lost_channels[0].c_str(), doomed.c_str());
  assert_false(w.pubsub->up());
  assert_false(w.pubsub->fence(&ev));
  assert_false(w.pubsub->subscribe(doomed));  // no master to subscribe on
  // A command for its slots waits for a master until its deadline (2 s here), then NULL.
  uint64_t t0 = rt::now_ms();
  Reply r = w.run({"GET", key});
  assert_int_equal(r.type, -1);
  assert_true(rt::now_ms() - t0 >= 1500);
  assert_false(w.links->ready());
  assert_non_null(strstr(w.links->describe().c_str(), "2 of 3 masters connected"));
  // The other masters still serve.
  std::string alive = w.key_on(w.cluster.ports[0], "alive-");
  assert_string_equal(w.run({"SET", alive, "1"}).text.c_str(), "OK");
  sub.s->shut_down();
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routes_to_every_master),
      cmocka_unit_test(test_moved_after_a_slot_moved),
      cmocka_unit_test(test_ask_while_a_slot_moves),
      cmocka_unit_test(test_tryagain_until_the_keys_are_together),
      cmocka_unit_test(test_publish_script_spublishes_and_noscript),
      cmocka_unit_test(test_subscriber_wrong_node_and_slot_moved),
      cmocka_unit_test(test_cluster_pubsub),
      cmocka_unit_test(test_subscriber_and_router_when_a_node_dies),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
