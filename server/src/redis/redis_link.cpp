#include "redis_link.hpp"

#include <hiredis/adapters/libevent.h>

#include <cstring>
#include <string_view>

#include "log.hpp"
#include "metrics.hpp"

namespace rt {

struct RedisLink::Pending {
  RedisLink* link;
  ReplyFn fn;
  void* priv;
};

RedisLink::RedisLink(event_base* base, const RedisAddress& addr, uint64_t timeout_ms, std::string name)
    : base_(base), addr_(addr), timeout_ms_(timeout_ms), name_(std::move(name)) {
  retry_ev_.reset(evtimer_new(base_, on_retry_timer, this));
  watchdog_ev_.reset(event_new(base_, -1, EV_PERSIST, on_watchdog, this));
  drop_ev_.reset(event_new(base_, -1, 0, on_drop, this));
  uint64_t tick = timeout_ms_ / 4;
  if (tick < 10) tick = 10;
  if (tick > 250) tick = 250;
  timeval tv = ms_to_tv(tick);
  event_add(watchdog_ev_.get(), &tv);
}

RedisLink::~RedisLink() {
  destroying_ = true;
  listener_ = nullptr;
  if (ac_) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;  // callbacks of this context must no longer reach us
    state_ = State::down;
    redisAsyncFree(ac);  // pending command callbacks run with NULL
  }
}

void RedisLink::start() noexcept {
  if (state_ == State::down && !destroying_ && has_address()) connect_now();
}

void RedisLink::set_address(const std::string& host, int port) noexcept {
  if (destroying_ || (!addr_.unix_socket && addr_.host == host && addr_.port == port)) return;
  try {
    addr_.host = host;
  } catch (...) {
    return;
  }
  addr_.port = port;
  addr_.unix_socket = false;
  RT_LOG(info, "redis link moves").kv("link", name_).kv("to", host + ":" + std::to_string(port));
  moving_ = true;
  kill("master moved");  // no-op while down
  moving_ = false;
  evtimer_del(retry_ev_.get());
  backoff_.reset();
  connect_now();
}

void RedisLink::trouble(bool not_master) noexcept {
  if (trouble_fn_ && !moving_ && !destroying_) trouble_fn_(trouble_arg_, *this, not_master);
}

void RedisLink::drop_soon(const std::string& reason, bool not_master) noexcept {
  if (!drop_reason_.empty()) return;
  try {
    drop_reason_ = reason;
  } catch (...) {
    drop_reason_ = "dropped";
  }
  drop_not_master_ = not_master;
  drop_seq_ = conn_seq_;
  event_active(drop_ev_.get(), EV_TIMEOUT, 1);
}

void RedisLink::on_drop(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<RedisLink*>(arg);
  std::string reason;
  reason.swap(self->drop_reason_);
  bool not_master = self->drop_not_master_;
  // A connection that went away meanwhile (and maybe a new one since) is not dropped.
  if (self->ac_ == nullptr || reason.empty() || self->drop_seq_ != self->conn_seq_) return;
  self->kill(reason.c_str());
  if (not_master) self->trouble(true);
}

void RedisLink::connect_now() noexcept {
  if (!has_address()) return;  // set_address() starts it
  redisAsyncContext* ac = addr_.unix_socket ? redisAsyncConnectUnix(addr_.path.c_str())
                                            : redisAsyncConnect(addr_.host.c_str(), addr_.port);
  if (ac == nullptr || ac->err) {
    RT_LOG(warn, "redis connect failed").kv("link", name_).kv("error", ac ? ac->errstr : "out of memory");
    if (ac) redisAsyncFree(ac);
    schedule_retry();
    trouble(false);
    return;
  }
  ac->data = this;
  conn_seq_++;
  if (redisLibeventAttach(ac, base_) != REDIS_OK) {
    redisAsyncFree(ac);
    schedule_retry();
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  ac_ = ac;
  state_ = State::connecting;
  connect_started_ms_ = now_ms();
}

void RedisLink::schedule_retry() noexcept {
  if (destroying_) return;
  timeval tv = ms_to_tv(backoff_.next());
  evtimer_add(retry_ev_.get(), &tv);
}

void RedisLink::on_retry_timer(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<RedisLink*>(arg);
  if (self->state_ == State::down) self->connect_now();
}

void RedisLink::on_connect(const redisAsyncContext* ac, int status) noexcept {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    RT_LOG(warn, "redis connect failed").kv("link", self->name_).kv("error", ac->errstr);
    self->ac_ = nullptr;
    self->state_ = State::down;
    self->schedule_retry();
    self->trouble(false);
    return;
  }
  if (!self->addr_.unix_socket) redisEnableKeepAlive(&self->ac_->c);  // ENOTSUP on unix sockets
  if (!self->addr_.password.empty()) {
    // First on the connection: every later command runs authenticated.
    const auto& a = self->addr_;
    const char* argv[3] = {"AUTH", a.user.c_str(), a.password.c_str()};
    size_t lens[3] = {4, a.user.size(), a.password.size()};
    if (a.user.empty()) {
      argv[1] = argv[2];
      lens[1] = lens[2];
    }
    redisAsyncCommandArgv(self->ac_, on_auth_reply, self, a.user.empty() ? 2 : 3, argv, lens);
  }
  if (self->addr_.db != 0) {
    std::string db = std::to_string(self->addr_.db);
    const char* argv[] = {"SELECT", db.c_str()};
    size_t lens[] = {6, db.size()};
    // Pipelined before anything else on this connection, so every later command sees the db.
    redisAsyncCommandArgv(self->ac_, nullptr, nullptr, 2, argv, lens);
  }
  if (self->require_master_) {
    // Up only once the server says it is the master (still `connecting` meanwhile: the
    // connect timeout covers the answer).
    const char* argv[] = {"ROLE"};
    size_t lens[] = {4};
    if (redisAsyncCommandArgv(self->ac_, on_role_reply, self, 1, argv, lens) == REDIS_OK) return;
    self->drop_soon("ROLE could not be sent", false);
    return;
  }
  self->became_up();
}

void RedisLink::became_up() noexcept {
  state_ = State::up;
  in_flight_ = 0;
  up_since_ms_ = now_ms();
  if (ever_up_) metrics::get().redis_reconnects.fetch_add(1, std::memory_order_relaxed);
  ever_up_ = true;
  RT_LOG(info, "redis connected").kv("link", name_).kv("addr", addr_.unix_socket ? addr_.path
                                                                  : addr_.host + ":" + std::to_string(addr_.port));
  if (listener_) listener_->on_link_up();
}

void RedisLink::on_role_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept {
  auto* r = static_cast<redisReply*>(reply);
  auto* self = static_cast<RedisLink*>(priv);
  // NULL: the connection is going away (reported by its disconnect / kill path).
  if (r == nullptr || ac->data == nullptr || self->ac_ != ac || self->state_ != State::connecting) return;
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING &&
      std::string_view(r->element[0]->str, r->element[0]->len) == "master") {
    self->became_up();
    return;
  }
  std::string role = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                     : r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING
                         ? std::string(r->element[0]->str, r->element[0]->len)
                         : "unexpected reply";
  RT_LOG(warn, "redis server is not the master, dropped")
      .kv("link", self->name_).kv("addr", self->addr_.host + ":" + std::to_string(self->addr_.port)).kv("role", role);
  self->drop_soon("not the master (ROLE: " + role + ")", true);
}

void RedisLink::on_auth_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept {
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr || ac->data == nullptr || r->type != REDIS_REPLY_ERROR) return;
  // Later commands fail with NOAUTH (answered 503, /healthz 503); say why once per connect.
  RT_LOG(error, "redis AUTH failed").kv("link", static_cast<RedisLink*>(priv)->name_).kv("error", std::string(r->str, r->len));
}

void RedisLink::on_disconnect(const redisAsyncContext* ac, int status) noexcept {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self == nullptr) return;
  // hiredis frees the context after this callback; pending callbacks already got NULL.
  self->ac_ = nullptr;
  self->went_down(ac->err ? ac->errstr : "connection closed");
}

void RedisLink::went_down(const char* reason) noexcept {
  // A connection that held for a while starts the backoff afresh; one that drops right
  // after connecting (flapping, refused commands) keeps backing off.
  if (now_ms() - up_since_ms_ >= 1000) backoff_.reset();
  state_ = State::down;
  in_flight_ = 0;
  if (destroying_)
    RT_LOG(debug, "redis connection closed").kv("link", name_).kv("reason", reason);
  else
    RT_LOG(warn, "redis connection lost").kv("link", name_).kv("reason", reason);
  if (listener_) listener_->on_link_down();
  schedule_retry();
  trouble(false);
}

void RedisLink::kill(const char* reason) noexcept {
  if (ac_ == nullptr) return;
  redisAsyncContext* ac = ac_;
  bool was_up = state_ == State::up;
  ac_ = nullptr;
  ac->data = nullptr;  // our disconnect callback stays silent; we report below
  state_ = State::down;
  redisAsyncFree(ac);  // pending callbacks run with NULL (they see up() == false)
  if (was_up) {
    went_down(reason);
  } else {
    if (!moving_) RT_LOG(warn, "redis connection attempt dropped").kv("link", name_).kv("reason", reason);
    schedule_retry();
    if (strcmp(reason, "connect timeout") == 0) trouble(false);
  }
}

bool RedisLink::command(ReplyFn fn, void* priv, int argc, const char** argv, const size_t* lens) noexcept {
  if (state_ != State::up) return false;
  auto* p = new (std::nothrow) Pending{this, fn, priv};
  if (p == nullptr) return false;
  if (redisAsyncCommandArgv(ac_, on_reply, p, argc, argv, lens) != REDIS_OK) {
    delete p;
    return false;
  }
  if (in_flight_++ == 0) last_progress_ms_ = now_ms();
  return true;
}

void RedisLink::on_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept {
  auto* p = static_cast<Pending*>(priv);
  RedisLink* self = p->link;
  // During kill()/destruction ac->data is NULL and the counters were reset already.
  if (ac->data != nullptr) {
    if (self->in_flight_ > 0) self->in_flight_--;
    self->last_progress_ms_ = now_ms();
  }
  ReplyFn fn = p->fn;
  void* user = p->priv;
  delete p;
  auto* r = static_cast<redisReply*>(reply);
  // The master was demoted under this connection: every write fails from now on.
  if (r != nullptr && ac->data != nullptr && self->require_master_ && r->type == REDIS_REPLY_ERROR &&
      r->len >= 8 && strncmp(r->str, "READONLY", 8) == 0)
    self->drop_soon("the server became a replica (READONLY)", true);
  fn(r, user);
}

void RedisLink::on_watchdog(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<RedisLink*>(arg);
  uint64_t now = now_ms();
  if (self->state_ == State::connecting && now - self->connect_started_ms_ > self->timeout_ms_) {
    self->kill("connect timeout");
  } else if (self->state_ == State::up && self->in_flight_ > 0 && now - self->last_progress_ms_ > self->timeout_ms_) {
    self->kill("command timeout");
  }
}

}  // namespace rt
