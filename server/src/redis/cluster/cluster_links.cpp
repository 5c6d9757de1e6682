#include "cluster_links.hpp"

#include <algorithm>
#include <cstring>

#include "log.hpp"
#include "metrics.hpp"

namespace rt {

namespace {
constexpr uint64_t kRefreshEveryMs = 5000;  // the map is asked for at least this often
constexpr uint64_t kMinRefreshGapMs = 100;  // and at most this often
constexpr uint64_t kParkTickMs = 20;        // parked commands are retried this often
constexpr int kMaxRedirects = 5;            // MOVED/ASK per command

void ignore_reply(redisReply*, void*) noexcept {}
}  // namespace

// One node connection (a seed or a master).
struct ClusterLinks::Node final : RedisLink::Listener {
  ClusterLinks* owner = nullptr;
  cluster::NodeAddr addr;
  std::unique_ptr<RedisLink> link;
  void on_link_up() noexcept override { owner->node_up(*this); }
  void on_link_down() noexcept override { owner->refresh(); }
};

// One routed command; owns copies of its arguments for retries. Freed by finish().
struct ClusterLinks::Call {
  ClusterLinks* owner;
  uint16_t slot;
  std::vector<std::string> args;
  RedisLink::ReplyFn fn;
  void* priv;
  uint64_t deadline_ms;
  int redirects = 0;
  bool asking = false;           // send ASKING + the command to ask_to
  cluster::NodeAddr ask_to;
  std::string sent_to_host;      // the host it was last sent to (for MOVED ":port")
};

// One CLUSTER SHARDS / SLOTS question. Freed in its reply callback.
struct ClusterLinks::MapCall {
  ClusterLinks* owner;
  uint64_t round;
  std::string host;   // of the node asked
  bool slots;         // CLUSTER SLOTS (the node did not know SHARDS)
  RedisLink* link;
};

ClusterLinks::ClusterLinks(event_base* base, const RedisAddress& addr, uint64_t timeout_ms, std::string tag,
                           ScriptSet* scripts)
    : base_(base), addr_(addr), timeout_ms_(timeout_ms), tag_(std::move(tag)), scripts_(scripts) {
  for (const auto& s : addr.cluster_seeds) seeds_.push_back(cluster::NodeAddr{s.host, s.port});
  timer_.reset(evtimer_new(base_, on_timer, this));
  park_ev_.reset(evtimer_new(base_, on_park_tick, this));
  reap_ev_.reset(event_new(base_, -1, 0, on_reap, this));
  periodic_ev_.reset(event_new(base_, -1, EV_PERSIST, [](evutil_socket_t, short, void* arg) noexcept {
    static_cast<ClusterLinks*>(arg)->refresh();
  }, this));
}

ClusterLinks::~ClusterLinks() {
  stopped_ = true;
  std::vector<Call*> parked;
  parked.swap(parked_);
  for (Call* c : parked) finish(c, nullptr);
  nodes_.clear();  // in-flight commands get NULL
  retired_.clear();
}

void ClusterLinks::start() noexcept {
  if (stopped_) return;
  for (const auto& s : seeds_) ensure_node(s);
  timeval tv = ms_to_tv(kRefreshEveryMs);
  event_add(periodic_ev_.get(), &tv);
}

void ClusterLinks::shut_down() noexcept {
  stopped_ = true;
  evtimer_del(timer_.get());
  event_del(periodic_ev_.get());
  evtimer_del(park_ev_.get());
  std::vector<Call*> parked;
  parked.swap(parked_);
  for (Call* c : parked) finish(c, nullptr);
  for (auto& n : nodes_) n->link->shut_down();
  for (auto& n : retired_) n->link->shut_down();
}

ClusterLinks::Node* ClusterLinks::node(const cluster::NodeAddr& a) noexcept {
  for (auto& n : nodes_)
    if (n->addr == a) return n.get();
  return nullptr;
}

ClusterLinks::Node* ClusterLinks::ensure_node(const cluster::NodeAddr& a) noexcept {
  if (Node* n = node(a)) return n;
  if (stopped_) return nullptr;
  try {
    auto n = std::make_unique<Node>();
    n->owner = this;
    n->addr = a;
    RedisAddress ra;
    ra.host = a.host;
    ra.port = a.port;
    ra.user = addr_.user;
    ra.password = addr_.password;
    n->link = std::make_unique<RedisLink>(base_, ra, timeout_ms_, tag_ + "/cluster/" + a.text());
    n->link->set_listener(n.get());
    n->link->set_trouble_hook(on_trouble, this);
    Node* raw = n.get();
    nodes_.push_back(std::move(n));
    raw->link->start();
    return raw;
  } catch (...) {
    return nullptr;
  }
}

void ClusterLinks::on_trouble(void* arg, RedisLink&, bool) noexcept { static_cast<ClusterLinks*>(arg)->refresh(); }

void ClusterLinks::node_up(Node& n) noexcept {
  if (scripts_) scripts_->load_into(*n.link);
  if (map_.masters.empty()) refresh();
  bool master = std::find(map_.masters.begin(), map_.masters.end(), n.addr) != map_.masters.end();
  if (!parked_.empty()) {
    timeval tv = ms_to_tv(0);
    evtimer_add(park_ev_.get(), &tv);
  }
  if (master && listener_) listener_->on_cluster_link_up(n.addr);
}

RedisLink* ClusterLinks::link_for_slot(uint16_t slot) noexcept {
  uint16_t i = map_.owner[slot];
  if (i == cluster::kNoMaster || i >= slot_node_.size() || slot_node_[i] == nullptr) return nullptr;
  RedisLink* l = slot_node_[i]->link.get();
  return l->up() ? l : nullptr;
}

bool ClusterLinks::ready() const noexcept {
  if (map_.masters.empty() || map_.uncovered() != 0) return false;
  for (Node* n : slot_node_)
    if (n == nullptr || !n->link->up()) return false;
  return true;
}

std::string ClusterLinks::describe() const {
  if (map_.masters.empty()) return "no slot map yet (asking " + std::to_string(nodes_.size()) + " nodes)";
  size_t up = 0;
  for (Node* n : slot_node_) up += n && n->link->up() ? 1 : 0;
  std::string s = std::to_string(up) + " of " + std::to_string(map_.masters.size()) + " masters connected";
  size_t missing = map_.uncovered();
  if (missing) s += ", " + std::to_string(missing) + " slots without a master";
  return s;
}

// --- routed commands ----------------------------------------------------------------------

bool ClusterLinks::command(uint16_t slot, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                           const size_t* lens) noexcept {
  if (stopped_) return false;
  Call* c = nullptr;
  try {
    c = new Call{this, uint16_t(slot & (cluster::kSlots - 1)), {}, fn, priv, now_ms() + timeout_ms_, 0, false, {}, {}};
    c->args.reserve(size_t(argc));
    for (int i = 0; i < argc; i++) c->args.emplace_back(argv[i], lens[i]);
  } catch (...) {
    delete c;
    return false;
  }
  dispatch(c);  // never finishes a new call: its deadline lies ahead
  return true;
}

namespace {
bool cluster_command(void* target, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                     const size_t* lens) noexcept {
  // EVAL/EVALSHA <script> <numkeys> <key1> ...: the first key's slot.
  uint16_t slot = argc > 3 ? cluster::key_slot(std::string_view(argv[3], lens[3])) : 0;
  return static_cast<ClusterLinks*>(target)->command(slot, fn, priv, argc, argv, lens);
}
}  // namespace

bool ClusterLinks::run_script(Script& script, const std::vector<std::string>& keys,
                              const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept {
  if (keys.empty()) return false;
  return run_script_via(cluster_command, this, script, keys, args, fn, priv);
}

void ClusterLinks::dispatch(Call* c) noexcept {
  if (stopped_) {
    finish(c, nullptr);
    return;
  }
  Node* n = nullptr;
  if (c->asking) {
    n = ensure_node(c->ask_to);
  } else {
    uint16_t i = map_.owner[c->slot];
    if (i != cluster::kNoMaster && i < slot_node_.size()) n = slot_node_[i];
  }
  if (n && n->link->up()) {
    std::vector<const char*> argv(c->args.size());
    std::vector<size_t> lens(c->args.size());
    for (size_t i = 0; i < c->args.size(); i++) {
      argv[i] = c->args[i].data();
      lens[i] = c->args[i].size();
    }
    if (c->asking) {
      const char* a[] = {"ASKING"};
      size_t l[] = {6};
      n->link->command(ignore_reply, nullptr, 1, a, l);
    }
    c->sent_to_host = n->addr.host;
    if (n->link->command(on_reply, c, int(argv.size()), argv.data(), lens.data())) return;
  }
  if (n == nullptr) refresh();
  park(c);
}

void ClusterLinks::park(Call* c) noexcept {
  if (now_ms() >= c->deadline_ms) {
    finish(c, nullptr);
    return;
  }
  try {
    parked_.push_back(c);
  } catch (...) {
    finish(c, nullptr);
    return;
  }
  if (!evtimer_pending(park_ev_.get(), nullptr)) {
    timeval tv = ms_to_tv(kParkTickMs);
    evtimer_add(park_ev_.get(), &tv);
  }
}

void ClusterLinks::on_park_tick(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ClusterLinks*>(arg);
  std::vector<Call*> batch;
  batch.swap(self->parked_);
  for (Call* c : batch) self->dispatch(c);
}

void ClusterLinks::finish(Call* c, redisReply* r) noexcept {
  RedisLink::ReplyFn fn = c->fn;
  void* priv = c->priv;
  delete c;
  fn(r, priv);
}

void ClusterLinks::on_reply(redisReply* r, void* priv) noexcept {
  auto* c = static_cast<Call*>(priv);
  ClusterLinks* self = c->owner;
  if (r == nullptr) {
    // The connection went away with the command in flight: it may have run, so it is not
    // sent again. The map may have changed (a failover).
    self->refresh();
    self->finish(c, nullptr);
    return;
  }
  cluster::Redirect rd = cluster::classify(r, c->sent_to_host);
  switch (rd.kind) {
    case cluster::ErrorKind::moved:
    case cluster::ErrorKind::ask:
      if (self->stopped_ || ++c->redirects > kMaxRedirects) break;
      if (rd.kind == cluster::ErrorKind::moved) {
        metrics::get().cluster_moved.fetch_add(1, std::memory_order_relaxed);
        self->learn_moved(rd.slot, rd.to);
        c->asking = false;
        c->slot = rd.slot;
      } else {
        metrics::get().cluster_ask.fetch_add(1, std::memory_order_relaxed);
        c->asking = true;
        c->ask_to = rd.to;
        if (self->listener_) self->listener_->on_cluster_ask(rd.slot, rd.to);
      }
      self->dispatch(c);
      return;
    case cluster::ErrorKind::tryagain:
    case cluster::ErrorKind::clusterdown:
      if (self->stopped_) break;
      if (rd.kind == cluster::ErrorKind::clusterdown) self->refresh();
      c->asking = false;
      if (now_ms() + kParkTickMs < c->deadline_ms) {
        self->park(c);
        return;
      }
      break;
    default:
      break;
  }
  self->finish(c, r);
}

// --- the slot map ---------------------------------------------------------------------------

void ClusterLinks::learn_moved(uint16_t slot, const cluster::NodeAddr& to) noexcept {
  if (stopped_) return;
  // The slot is served there from now on; the rest of the map follows.
  Node* n = ensure_node(to);
  if (n != nullptr) {
    try {
      uint16_t i = map_.master_index(to);
      map_.owner[slot & (cluster::kSlots - 1)] = i;
      if (slot_node_.size() <= i) slot_node_.resize(size_t(i) + 1, nullptr);
      slot_node_[i] = n;
    } catch (...) {
    }
  }
  refresh();
}

void ClusterLinks::refresh() noexcept {
  if (stopped_) return;
  if (asking_) {
    again_ = true;
    return;
  }
  if (timer_pending_) return;
  uint64_t now = now_ms();
  if (last_round_ms_ != 0 && now - last_round_ms_ < kMinRefreshGapMs) {
    timer_pending_ = true;
    timeval tv = ms_to_tv(kMinRefreshGapMs - (now - last_round_ms_));
    evtimer_add(timer_.get(), &tv);
    return;
  }
  start_refresh();
}

void ClusterLinks::on_timer(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ClusterLinks*>(arg);
  self->timer_pending_ = false;
  if (!self->stopped_ && !self->asking_) self->start_refresh();
}

void ClusterLinks::start_refresh() noexcept {
  RT_LOG(debug, "asking for the cluster slot map").kv("worker", tag_).kv("nodes", nodes_.size());
  asking_ = true;
  again_ = false;
  round_++;
  asked_in_round_ = 0;
  last_round_ms_ = now_ms();
  if (ask_next()) return;
  // Nobody to ask yet (connecting): try again after a backoff; a node coming up asks too.
  asking_ = false;
  timer_pending_ = true;
  timeval tv = ms_to_tv(backoff_.next());
  evtimer_add(timer_.get(), &tv);
}

bool ClusterLinks::ask_next() noexcept {
  while (asked_in_round_ < nodes_.size()) {
    asked_in_round_++;
    Node& n = *nodes_[ask_from_++ % nodes_.size()];
    if (!n.link->up()) continue;
    auto* mc = new (std::nothrow) MapCall{this, round_, n.addr.host, false, n.link.get()};
    if (mc == nullptr) return false;
    const char* argv[] = {"CLUSTER", "SHARDS"};
    size_t lens[] = {7, 6};
    if (n.link->command(on_map_reply, mc, 2, argv, lens)) return true;
    delete mc;
  }
  return false;
}

void ClusterLinks::on_map_reply(redisReply* r, void* priv) noexcept {
  MapCall mc = *static_cast<MapCall*>(priv);
  delete static_cast<MapCall*>(priv);
  ClusterLinks* self = mc.owner;
  if (self->stopped_ || !self->asking_ || mc.round != self->round_) return;
  if (r != nullptr && !mc.slots && r->type == REDIS_REPLY_ERROR) {
    // Redis < 7.0 does not know CLUSTER SHARDS: ask the same node for CLUSTER SLOTS.
    auto* again = new (std::nothrow) MapCall{self, mc.round, mc.host, true, mc.link};
    const char* argv[] = {"CLUSTER", "SLOTS"};
    size_t lens[] = {7, 5};
    if (again && mc.link->up() && mc.link->command(on_map_reply, again, 2, argv, lens)) return;
    delete again;
  }
  cluster::SlotMap m;
  std::string error;
  bool ok = r != nullptr && (mc.slots ? cluster::parse_cluster_slots(r, mc.host, &m, &error)
                                      : cluster::parse_cluster_shards(r, mc.host, &m, &error));
  if (ok && !m.masters.empty()) {
    self->asking_ = false;
    self->backoff_.reset();
    self->take_map(std::move(m), mc.host);
    if (self->again_) {
      self->again_ = false;
      self->refresh();
    }
    return;
  }
  if (r == nullptr) RT_LOG(debug, "slot map question failed (connection)").kv("from", mc.host);
  if (r != nullptr)
    RT_LOG(warn, "cluster node gave no usable slot map").kv("from", mc.host).kv("error", ok ? "no masters" : error);
  if (self->ask_next()) return;
  self->asking_ = false;
  self->timer_pending_ = true;
  timeval tv = ms_to_tv(self->backoff_.next());
  evtimer_add(self->timer_.get(), &tv);
}

void ClusterLinks::take_map(cluster::SlotMap&& m, const std::string& from) noexcept {
  if (m.masters == map_.masters && m.owner == map_.owner) {
    bool complete = slot_node_.size() == map_.masters.size();
    for (size_t i = 0; complete && i < slot_node_.size(); i++) complete = slot_node_[i] != nullptr;
    if (complete) {
      RT_LOG(debug, "cluster slot map unchanged").kv("from", from).kv("worker", tag_);
      return;
    }
  }
  bool first = map_.masters.empty();
  try {
    map_ = std::move(m);
    slot_node_.assign(map_.masters.size(), nullptr);
  } catch (...) {
    return;
  }
  for (size_t i = 0; i < map_.masters.size(); i++) slot_node_[i] = ensure_node(map_.masters[i]);
  // Nodes that are neither a master nor a seed any more close from the next loop turn (we
  // may be inside one of their callbacks now).
  for (size_t i = 0; i < nodes_.size();) {
    const cluster::NodeAddr& a = nodes_[i]->addr;
    bool keep = std::find(map_.masters.begin(), map_.masters.end(), a) != map_.masters.end() ||
                std::find(seeds_.begin(), seeds_.end(), a) != seeds_.end();
    if (keep) {
      i++;
      continue;
    }
    try {
      retired_.push_back(std::move(nodes_[i]));
    } catch (...) {
      i++;
      continue;
    }
    nodes_.erase(nodes_.begin() + long(i));
    event_active(reap_ev_.get(), EV_TIMEOUT, 1);
  }
  map_version_++;
  if (!first) metrics::get().cluster_map_changes.fetch_add(1, std::memory_order_relaxed);
  std::string masters;
  for (const auto& a : map_.masters) masters += (masters.empty() ? "" : ",") + a.text();
  RT_LOG(info, first ? "cluster slot map taken" : "cluster slot map changed")
      .kv("from", from).kv("masters", masters).kv("uncovered_slots", map_.uncovered()).kv("worker", tag_);
  if (!parked_.empty()) {
    timeval tv = ms_to_tv(0);
    evtimer_add(park_ev_.get(), &tv);
  }
  if (listener_) listener_->on_cluster_map();
}

void ClusterLinks::on_reap(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ClusterLinks*>(arg);
  std::vector<std::unique_ptr<Node>> dead;
  dead.swap(self->retired_);
  dead.clear();  // their in-flight commands get NULL
}

}  // namespace rt
