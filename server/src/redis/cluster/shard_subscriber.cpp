#include "shard_subscriber.hpp"

#include <event2/buffer.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include "log.hpp"
#include "metrics.hpp"

namespace rt {

namespace {
constexpr uint64_t kPingEveryMs = 3000;  // an idle connection is PINGed this often
}  // namespace

ShardSubscriber::ShardSubscriber(event_base* base, cluster::NodeAddr addr, std::string user, std::string password,
                                 uint64_t timeout_ms, std::string name, Listener* listener)
    : base_(base), addr_(std::move(addr)), user_(std::move(user)), password_(std::move(password)),
      timeout_ms_(timeout_ms), name_(std::move(name)), listener_(listener) {
  retry_ev_.reset(evtimer_new(base_, on_retry, this));
  tick_ev_.reset(event_new(base_, -1, EV_PERSIST, on_tick, this));
  drop_ev_.reset(event_new(base_, -1, 0, on_drop, this));
  uint64_t tick = timeout_ms_ / 4;
  if (tick < 10) tick = 10;
  if (tick > 250) tick = 250;
  timeval tv = ms_to_tv(tick);
  event_add(tick_ev_.get(), &tv);
}

ShardSubscriber::~ShardSubscriber() {
  stopped_ = true;
  listener_ = nullptr;
  bev_.reset();
}

void ShardSubscriber::start() noexcept {
  if (state_ == State::down && !stopped_ && !bev_) connect_now();
}

void ShardSubscriber::connect_now() noexcept {
  if (stopped_) return;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr_.port);
  // Cluster nodes announce addresses (IPs as a rule): this resolves without a lookup then.
  int rc = getaddrinfo(addr_.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    RT_LOG(warn, "sharded pub/sub: cannot resolve the node").kv("link", name_).kv("error", gai_strerror(rc));
    if (res) freeaddrinfo(res);
    went_down("resolve failed", true);
    return;
  }
  bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
  reader_.reset(redisReaderCreate());
  if (!bev_ || !reader_) {
    freeaddrinfo(res);
    went_down("out of memory", true);
    return;
  }
  bufferevent_setcb(bev_.get(), on_read, nullptr, on_event, this);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  state_ = State::connecting;
  connect_started_ms_ = now_ms();
  in_flight_.clear();
  server_count_ = 0;
  rc = bufferevent_socket_connect(bev_.get(), res->ai_addr, int(res->ai_addrlen));
  freeaddrinfo(res);
  if (rc != 0) {
    went_down("connect failed", true);
    return;
  }
  // First on the connection (sent once connected): every later command runs authenticated.
  if (!password_.empty()) {
    bool ok = user_.empty() ? send(Sent::auth, "AUTH", password_) : send(Sent::auth, "AUTH", user_, password_);
    if (!ok) went_down("AUTH could not be sent", true);
  }
}

bool ShardSubscriber::send(Sent what, std::string_view verb, std::string_view arg, std::string_view arg2) noexcept {
  if (!bev_) return false;
  const char* argv[3] = {verb.data(), arg.data(), arg2.data()};
  size_t lens[3] = {verb.size(), arg.size(), arg2.size()};
  int argc = what == Sent::ping ? 1 : arg2.empty() ? 2 : 3;
  char* cmd = nullptr;
  int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
  if (len < 0 || cmd == nullptr) return false;
  bool ok = bufferevent_write(bev_.get(), cmd, size_t(len)) == 0;
  redisFreeCommand(cmd);
  if (!ok) return false;
  try {
    in_flight_.push_back(InFlight{what, std::string(what == Sent::ssub || what == Sent::sunsub ? arg : ""), now_ms()});
  } catch (...) {
    drop_soon("out of memory");
  }
  return true;
}

bool ShardSubscriber::ssubscribe(std::string_view channel) noexcept {
  return state_ == State::up && send(Sent::ssub, "SSUBSCRIBE", channel);
}

bool ShardSubscriber::sunsubscribe(std::string_view channel) noexcept {
  return state_ == State::up && send(Sent::sunsub, "SUNSUBSCRIBE", channel);
}

void ShardSubscriber::on_event(bufferevent*, short what, void* arg) noexcept {
  auto* self = static_cast<ShardSubscriber*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    int fd = int(bufferevent_getfd(self->bev_.get()));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    self->state_ = State::up;
    self->up_since_ms_ = self->last_rx_ms_ = self->last_ping_ms_ = now_ms();
    if (self->ever_up_) metrics::get().redis_reconnects.fetch_add(1, std::memory_order_relaxed);
    self->ever_up_ = true;
    RT_LOG(info, "sharded pub/sub connected").kv("link", self->name_).kv("addr", self->addr_.text());
    if (self->listener_) self->listener_->on_shard_up(*self);
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    std::string why = what & BEV_EVENT_EOF ? "connection closed" : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
    self->went_down(why, true);
  }
}

void ShardSubscriber::on_read(bufferevent* bev, void* arg) noexcept {
  auto* self = static_cast<ShardSubscriber*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  self->last_rx_ms_ = now_ms();
  // Feed what arrived, then take every complete reply.
  char buf[16384];
  int k;
  while ((k = evbuffer_remove(in, buf, sizeof buf)) > 0)
    if (redisReaderFeed(self->reader_.get(), buf, size_t(k)) != REDIS_OK) {
      self->went_down("reply buffer full", true);
      return;
    }
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(self->reader_.get(), &reply) != REDIS_OK) {
      self->went_down(std::string("protocol error: ") + self->reader_->errstr, true);
      return;
    }
    if (reply == nullptr) return;
    self->handle(static_cast<redisReply*>(reply));
    freeReplyObject(reply);
    if (!self->bev_) return;  // went down meanwhile (a listener ran out of memory...)
  }
}

void ShardSubscriber::handle(const redisReply* r) noexcept {
  auto str = [](const redisReply* e) {
    return e && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) ? std::string_view(e->str, e->len)
                                                                                 : std::string_view();
  };
  std::string_view kind = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? str(r->element[0]) : std::string_view();
  if (kind == "smessage" && r->elements >= 3) {
    if (listener_) listener_->on_smessage(*this, str(r->element[1]), str(r->element[2]));
    return;
  }
  bool head = !in_flight_.empty();
  if ((kind == "ssubscribe" || kind == "sunsubscribe") && r->elements >= 3) {
    std::string_view ch = str(r->element[1]);
    if (r->element[2]->type == REDIS_REPLY_INTEGER) server_count_ = r->element[2]->integer;
    if (kind == "ssubscribe") {
      if (head && in_flight_.front().what == Sent::ssub) in_flight_.pop_front();
      if (listener_) listener_->on_ssubscribed(*this, ch);
      return;
    }
    bool ours = head && in_flight_.front().what == Sent::sunsub && in_flight_.front().channel == ch;
    if (ours) in_flight_.pop_front();
    else metrics::get().cluster_sunsubscribed.fetch_add(1, std::memory_order_relaxed);
    if (listener_) listener_->on_sunsubscribed(*this, ch, !ours);
    return;
  }
  if (kind == "message" || kind == "pmessage" || kind == "subscribe" || kind == "unsubscribe") return;  // not ours
  // Anything else answers the oldest command in flight: "pong" (PING while subscribed),
  // +PONG, +OK (AUTH), or an error.
  if (!head) return;
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  if (r->type != REDIS_REPLY_ERROR) return;
  std::string_view err(r->str, r->len);
  if (f.what == Sent::ssub) {
    if (listener_) listener_->on_ssubscribe_failed(*this, f.channel, err);
  } else if (f.what == Sent::auth) {
    RT_LOG(error, "redis AUTH failed").kv("link", name_).kv("error", std::string(err));
  } else {
    RT_LOG(warn, "sharded pub/sub command refused").kv("link", name_).kv("error", std::string(err));
  }
}

void ShardSubscriber::went_down(const std::string& reason, bool retry) noexcept {
  bool was_up = state_ == State::up;
  bev_.reset();
  reader_.reset();
  in_flight_.clear();
  server_count_ = 0;
  state_ = State::down;
  if (now_ms() - up_since_ms_ >= 1000 && was_up) backoff_.reset();
  if (stopped_)
    RT_LOG(debug, "sharded pub/sub closed").kv("link", name_).kv("reason", reason);
  else
    RT_LOG(warn, was_up ? "sharded pub/sub lost" : "sharded pub/sub connect failed")
        .kv("link", name_).kv("addr", addr_.text()).kv("reason", reason);
  if (was_up && listener_) listener_->on_shard_down(*this);
  if (retry && !stopped_) {
    timeval tv = ms_to_tv(backoff_.next());
    evtimer_add(retry_ev_.get(), &tv);
  }
}

void ShardSubscriber::kill(const char* reason) noexcept {
  if (!bev_) return;
  went_down(reason, !stopped_);
}

void ShardSubscriber::shut_down() noexcept {
  stopped_ = true;
  evtimer_del(retry_ev_.get());
  event_del(tick_ev_.get());
  if (bev_) went_down("shutdown", false);
}

void ShardSubscriber::drop_soon(const char* reason) noexcept {
  if (drop_reason_ != nullptr) return;
  drop_reason_ = reason;
  event_active(drop_ev_.get(), EV_TIMEOUT, 1);
}

void ShardSubscriber::on_drop(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ShardSubscriber*>(arg);
  const char* reason = self->drop_reason_;
  self->drop_reason_ = nullptr;
  if (reason) self->kill(reason);
}

void ShardSubscriber::on_retry(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ShardSubscriber*>(arg);
  if (self->state_ == State::down && !self->bev_) self->connect_now();
}

void ShardSubscriber::on_tick(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ShardSubscriber*>(arg);
  uint64_t now = now_ms();
  if (self->state_ == State::connecting && now - self->connect_started_ms_ > self->timeout_ms_) {
    self->kill("connect timeout");
  } else if (self->state_ == State::up) {
    if (!self->in_flight_.empty() && now - self->in_flight_.front().sent_ms > self->timeout_ms_) {
      self->kill("command timeout");
    } else if (self->in_flight_.empty() && now - self->last_ping_ms_ >= kPingEveryMs) {
      // Liveness: a half-open connection would otherwise hold its polls for ever.
      self->last_ping_ms_ = now;
      if (!self->send(Sent::ping, "PING", {})) self->kill("PING could not be sent");
    }
  }
}

}  // namespace rt
