#include "sentinel.hpp"

#include <cstring>
#include <sstream>

#include "log.hpp"
#include "metrics.hpp"
#include "protocol/protocol.hpp"

namespace rt {

namespace {
constexpr uint64_t kMinRoundGapMs = 100;   // rounds start at most this often
constexpr uint64_t kDistrustMs = 5000;     // an address that said "not the master" is skipped this long
}  // namespace

// One sentinel: a link for questions and a link subscribed to +switch-master.
struct SentinelWatch::Node {
  struct QueryListener final : RedisLink::Listener {
    Node* n = nullptr;
    void on_link_up() noexcept override {
      if (!n->w->known()) n->w->ask();
    }
    void on_link_down() noexcept override {}
  };
  struct EventsListener final : RedisLink::Listener {
    Node* n = nullptr;
    void on_link_up() noexcept override { n->w->subscribe(*n); }
    void on_link_down() noexcept override {}
  };

  SentinelWatch* w = nullptr;
  size_t idx = 0;
  std::string addr;  // "host:port", for logs
  std::unique_ptr<RedisLink> query, events;
  QueryListener ql;
  EventsListener el;
};

// One SENTINEL get-master-addr-by-name in flight. Freed in its reply callback (called
// exactly once, also with NULL while the watcher shuts down).
struct SentinelWatch::AskCall {
  SentinelWatch* w;
  size_t idx;
  uint64_t round;
};

SentinelWatch::SentinelWatch(event_base* base, const RedisAddress& addr, uint64_t timeout_ms, const std::string& tag,
                             Listener* listener)
    : base_(base), master_name_(addr.master_name), listener_(listener) {
  timer_.reset(evtimer_new(base_, on_timer, this));
  for (size_t i = 0; i < addr.sentinels.size(); i++) {
    auto n = std::make_unique<Node>();
    n->w = this;
    n->idx = i;
    RedisAddress sa;
    sa.host = addr.sentinels[i].host;
    sa.port = addr.sentinels[i].port;
    sa.user = addr.sentinel_user;
    sa.password = addr.sentinel_password;
    n->addr = sa.host + ":" + std::to_string(sa.port);
    std::string name = tag + "/sentinel" + std::to_string(i);
    n->query = std::make_unique<RedisLink>(base_, sa, timeout_ms, name + "/query");
    n->events = std::make_unique<RedisLink>(base_, sa, timeout_ms, name + "/events");
    n->ql.n = n.get();
    n->el.n = n.get();
    n->query->set_listener(&n->ql);
    n->events->set_listener(&n->el);
    nodes_.push_back(std::move(n));
  }
}

SentinelWatch::~SentinelWatch() {
  stopped_ = true;  // the links' last callbacks (NULL replies) must not reach the listener
  nodes_.clear();
}

void SentinelWatch::start() noexcept {
  for (auto& n : nodes_) {
    n->query->start();
    n->events->start();
  }
}

void SentinelWatch::shut_down() noexcept {
  stopped_ = true;
  evtimer_del(timer_.get());
  for (auto& n : nodes_) {
    n->query->shut_down();
    n->events->shut_down();
  }
}

void SentinelWatch::subscribe(Node& n) noexcept {
  redisAsyncContext* ac = n.events->context();
  if (ac == nullptr || stopped_) return;
  const char* argv[] = {"SUBSCRIBE", "+switch-master"};
  size_t lens[] = {9, 14};
  // The callback stays registered for the subscription: confirmation, then every message.
  if (redisAsyncCommandArgv(ac, on_event, &n, 2, argv, lens) != REDIS_OK)
    RT_LOG(warn, "sentinel SUBSCRIBE failed").kv("sentinel", n.addr);
}

void SentinelWatch::on_event(redisAsyncContext* ac, void* reply, void* priv) noexcept {
  auto* r = static_cast<redisReply*>(reply);
  auto* n = static_cast<Node*>(priv);
  if (r == nullptr || ac->data == nullptr || n->w->stopped_) return;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
  std::string_view kind(r->element[0]->str, r->element[0]->len);
  if (kind == "subscribe") {
    // Listening from now on; a switch announced while we were not is found by asking.
    RT_LOG(debug, "following the sentinel's +switch-master").kv("sentinel", n->addr);
    n->w->ask();
    return;
  }
  if (kind != "message" || r->element[2]->type != REDIS_REPLY_STRING) return;
  // "<master name> <old ip> <old port> <new ip> <new port>"
  std::string name, old_ip, old_port, new_ip, new_port;
  try {
    std::istringstream in(std::string(r->element[2]->str, r->element[2]->len));
    in >> name >> old_ip >> old_port >> new_ip >> new_port;
  } catch (...) {
    return;
  }
  uint64_t port = 0;
  if (name != n->w->master_name_ || new_ip.empty() || !proto::parse_id(new_port, &port) || port == 0 || port > 65535)
    return;
  n->w->found(new_ip, int(port), "+switch-master", n->idx);
}

void SentinelWatch::trouble(const RedisLink& link, bool not_master) noexcept {
  if (stopped_) return;
  if (not_master) {
    try {
      distrusted_host_ = link.host();
    } catch (...) {
    }
    distrusted_port_ = link.port();
    distrusted_until_ms_ = now_ms() + kDistrustMs;
  }
  ask();
}

bool SentinelWatch::distrusted(const std::string& host, int port) const noexcept {
  return port == distrusted_port_ && host == distrusted_host_ && now_ms() < distrusted_until_ms_;
}

void SentinelWatch::ask() noexcept {
  if (stopped_) return;
  if (asking_) {
    again_ = true;
    return;
  }
  if (timer_pending_) return;
  uint64_t now = now_ms();
  if (last_round_ms_ != 0 && now - last_round_ms_ < kMinRoundGapMs) {
    timeval tv = ms_to_tv(kMinRoundGapMs - (now - last_round_ms_));
    timer_pending_ = true;
    evtimer_add(timer_.get(), &tv);
    return;
  }
  start_round();
}

void SentinelWatch::on_timer(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<SentinelWatch*>(arg);
  self->timer_pending_ = false;
  if (!self->stopped_ && !self->asking_) self->start_round();
}

void SentinelWatch::start_round() noexcept {
  asking_ = true;
  again_ = false;
  round_++;
  next_ = 0;
  last_round_ms_ = now_ms();
  try_next();
}

void SentinelWatch::try_next() noexcept {
  while (next_ < nodes_.size()) {
    Node& n = *nodes_[next_++];
    if (!n.query->up()) continue;
    auto* call = new (std::nothrow) AskCall{this, n.idx, round_};
    if (call == nullptr) continue;
    const char* argv[] = {"SENTINEL", "get-master-addr-by-name", master_name_.c_str()};
    size_t lens[] = {8, 23, master_name_.size()};
    if (n.query->command(on_ask_reply, call, 3, argv, lens)) return;
    delete call;
  }
  round_failed();
}

void SentinelWatch::round_failed() noexcept {
  asking_ = false;
  again_ = false;
  uint64_t delay = backoff_.next();
  size_t up = 0;
  for (auto& n : nodes_) up += n->query->up() ? 1 : 0;
  RT_LOG(warn, "no sentinel named a usable master")
      .kv("master", master_name_).kv("sentinels_up", up).kv("of", nodes_.size()).kv("retry_ms", delay);
  timeval tv = ms_to_tv(delay);
  timer_pending_ = true;
  evtimer_add(timer_.get(), &tv);
}

void SentinelWatch::on_ask_reply(redisReply* r, void* priv) noexcept {
  AskCall call = *static_cast<AskCall*>(priv);
  delete static_cast<AskCall*>(priv);
  SentinelWatch* self = call.w;
  if (self->stopped_ || !self->asking_ || call.round != self->round_) return;
  const std::string& from = self->nodes_[call.idx]->addr;
  uint64_t port = 0;
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
      r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len > 0 &&
      proto::parse_id(std::string_view(r->element[1]->str, r->element[1]->len), &port) && port > 0 && port <= 65535) {
    std::string host(r->element[0]->str, r->element[0]->len);
    if (!self->distrusted(host, int(port))) {
      self->asking_ = false;
      self->backoff_.reset();
      self->found(host, int(port), "asked", call.idx);
      if (self->again_) {
        self->again_ = false;
        self->ask();
      }
      return;
    }
    RT_LOG(debug, "sentinel names an address that said it is not the master; asking the next")
        .kv("sentinel", from).kv("addr", host + ":" + std::to_string(port));
  } else if (r != nullptr && r->type == REDIS_REPLY_ERROR) {
    RT_LOG(warn, "sentinel refused the question").kv("sentinel", from).kv("error", std::string(r->str, r->len));
  } else if (r != nullptr) {
    RT_LOG(warn, "sentinel does not know the master").kv("sentinel", from).kv("master", self->master_name_);
  }
  self->try_next();
}

void SentinelWatch::found(const std::string& host, int port, const char* how, size_t sentinel) noexcept {
  if (stopped_ || (host == host_ && port == port_)) return;
  std::string was = host_.empty() ? "" : host_ + ":" + std::to_string(port_);
  try {
    host_ = host;
  } catch (...) {
    return;
  }
  port_ = port;
  if (!was.empty()) metrics::get().redis_master_changes.fetch_add(1, std::memory_order_relaxed);
  RT_LOG(info, was.empty() ? "redis master found" : "redis master changed")
      .kv("master", master_name_).kv("addr", host + ":" + std::to_string(port)).kv("was", was)
      .kv("how", how).kv("sentinel", nodes_[sentinel]->addr);
  listener_->on_master(host, port);
}

std::string SentinelWatch::describe() const {
  if (known()) return "master '" + master_name_ + "' at " + host_ + ":" + std::to_string(port_);
  size_t up = 0;
  for (auto& n : nodes_) up += n->query->up() ? 1 : 0;
  return "looking for the master '" + master_name_ + "' (" + std::to_string(up) + " of " +
         std::to_string(nodes_.size()) + " sentinels reachable)";
}

}  // namespace rt
