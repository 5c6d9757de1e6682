// sys/queue.h first: its TAILQ macros for evkeyvalq (keyvalq_struct.h uses the same layout).
#include <sys/queue.h>

#include "http_server.hpp"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <new>
#include <utility>

#include "log.hpp"
#include "metrics.hpp"

// Two places below lean on how libevent 2.1's evhttp works inside, where its public API
// has no way: Server::attach finds a connection before its first request through the
// bufferevent's callback argument (evhttp's evhttp_connection), and Request::respond
// writes an answer at once around evhttp's frozen output buffer. Both are pinned by the
// integration tests (drops, keep-alive, pipelining); a libevent other than 2.1 must be
// checked against them first (2.2 has evhttp_set_newreqcb for the first).
static_assert(LIBEVENT_VERSION_NUMBER >= 0x02010000 && LIBEVENT_VERSION_NUMBER < 0x02020000,
              "rt's evhttp host is written for libevent 2.1: see the comment above");

namespace rt::http {

namespace {
constexpr uint64_t kAcceptBackoffMs = 100;
// evhttp -> Server, for listener error callbacks (see start()).
std::mutex registry_mutex;
std::vector<std::pair<evhttp*, Server*>> registry;
// Pipelined bytes kept behind a request that is with its handler (reading goes on for
// drop detection); beyond this reading pauses until the answer is out.
constexpr size_t kQueuedInput = 64 << 10;
// At the connection bound: how often to look for room (and whether newcomers wait), and
// how long a connection may be idle between requests, or reading one request, before it
// may be closed for a waiting newcomer. A browser sends a request head in one packet: a
// second is far beyond any honest client and well below --request-timeout.
constexpr uint64_t kLimitTickMs = 100;
constexpr uint64_t kShedGraceMs = 1000;
}  // namespace

// Our state of one evhttp connection, from its accept to evhttp's close callback (and,
// when its request outlives the connection, until the handler releases that request).
// Freed from the server's reap event, never from inside a callback.
struct Conn {
  Server* srv;
  bufferevent* bev;
  evhttp_connection* evcon;
  int fd;
  event deadline{};                    // --request-timeout of the request being read
  evbuffer_cb_entry* input_cb = nullptr;  // on while idle: the first byte of a request
  Request req;
  Conn* next_dead = nullptr;
  uint64_t since_ms = 0;     // accepted, or its last answer written (now_ms())
  bool open = true;          // evhttp still has the connection
  bool busy = false;         // a request was dispatched; its answer is not completely written
  bool with_handler = false; // req is with the handler (not answered or released yet)
  bool close_queued = false; // release() of a connected request: close from the reap event

  Conn(Server* s, bufferevent* b, evhttp_connection* e, int f) noexcept : srv(s), bev(b), evcon(e), fd(f) {}

  static void on_input(evbuffer* buf, const evbuffer_cb_info* info, void* arg) noexcept;
  static void on_deadline(evutil_socket_t, short, void* arg) noexcept;
  static void on_close(evhttp_connection*, void* arg) noexcept;
  static void on_complete(evhttp_request*, void* arg) noexcept;

  void not_busy() noexcept {
    if (!busy) return;
    busy = false;
    srv->busy_--;
  }
  // Idle between requests: the next byte starts the request clock; bytes already buffered
  // (pipelined) start it now.
  void wait_for_request() noexcept {
    evbuffer* in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in) > 0) event_add(&deadline, &srv->request_tv_);
    else if (input_cb) evbuffer_cb_set_flags(in, input_cb, EVBUFFER_CB_ENABLED);
  }
};

// --- Conn: evhttp's and libevent's callbacks -----------------------------------------------

void Conn::on_input(evbuffer* buf, const evbuffer_cb_info* info, void* arg) noexcept {
  auto* c = static_cast<Conn*>(arg);
  if (info->n_added == 0) return;
  evbuffer_cb_clear_flags(buf, c->input_cb, EVBUFFER_CB_ENABLED);
  // A fresh connection's clock runs from the accept already.
  if (!event_pending(&c->deadline, EV_TIMEOUT, nullptr)) event_add(&c->deadline, &c->srv->request_tv_);
}

// While the listener is paused at the bound: resume when there is room, else make room
// for the newcomers waiting in the accept queue.
void Server::on_limit_tick(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  if (s->stopping_) return;
  if (s->conns_ >= s->opt_.max_connections) {
    // A shared socket's queue is seen by every worker on it: each makes room for its part.
    size_t waiting = size_t(metrics::accept_queue(s->listen_fd_));
    size_t sharers = s->opt_.listener_sharers > 0 ? s->opt_.listener_sharers : 1;
    if (waiting > 0) s->shed((waiting + sharers - 1) / sharers);
  }
  s->update_accepting();
}

size_t Server::shed(size_t n) noexcept {
  uint64_t now = now_ms();
  size_t closed = 0;
  for (size_t fd = 0; fd < by_fd_.size() && closed < n; fd++) {
    Conn* c = by_fd_[fd];
    if (c == nullptr || !c->open || c->busy || c->with_handler || c->close_queued) continue;
    if (now - c->since_ms < kShedGraceMs) continue;
    // A request in progress has its deadline armed (its first byte came); an idle
    // keep-alive connection waits for one (a fresh one has its deadline from the accept,
    // and counts as slow once its grace is over).
    bool reading = event_pending(&c->deadline, EV_TIMEOUT, nullptr);
    (reading ? metrics::get().shed_slow : metrics::get().shed_idle).fetch_add(1, std::memory_order_relaxed);
    closed++;
    evhttp_connection_free(c->evcon);  // calls on_close
  }
  if (closed > 0) RT_LOG(debug, "connection bound: closed idle or slow connections").kv("closed", closed);
  return closed;
}

void Conn::on_deadline(evutil_socket_t, short, void* arg) noexcept {
  auto* c = static_cast<Conn*>(arg);
  if (!c->open || c->with_handler || c->busy) return;
  RT_LOG(debug, "request not complete within the request timeout, closing");
  metrics::get().request_timeouts.fetch_add(1, std::memory_order_relaxed);
  evhttp_connection_free(c->evcon);  // calls on_close
}

void Conn::on_close(evhttp_connection*, void* arg) noexcept {
  auto* c = static_cast<Conn*>(arg);
  Server* s = c->srv;
  c->open = false;
  s->connection_closed();
  event_del(&c->deadline);
  if (c->input_cb) evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
  c->input_cb = nullptr;
  if (c->fd >= 0 && size_t(c->fd) < s->by_fd_.size() && s->by_fd_[size_t(c->fd)] == c) s->by_fd_[size_t(c->fd)] = nullptr;
  c->not_busy();
  if (c->with_handler) {
    Request& q = c->req;
    // evhttp detaches a request whose client went away (EOF while it was with us) and
    // leaves it to us; one still attached is freed by evhttp right after this callback.
    if (q.native_ != nullptr) {
      if (evhttp_request_get_connection(q.native_) == nullptr) q.native_ours_ = true;
      else q.native_ = nullptr;
    }
    Request::GoneFn fn = q.gone_fn_;
    q.gone_fn_ = nullptr;
    if (fn != nullptr) fn(q.gone_arg_);
    return;  // freed when the handler lets go of the request
  }
  if (!c->close_queued) s->retire(c);
}

void Conn::on_complete(evhttp_request*, void* arg) noexcept {
  // The answer is completely written; evhttp goes on with the next request (or closes).
  auto* c = static_cast<Conn*>(arg);
  c->not_busy();
  c->since_ms = now_ms();
  bufferevent_set_timeouts(c->bev, &c->srv->idle_tv_, &c->srv->request_tv_);
  c->wait_for_request();
}

// --- Request -------------------------------------------------------------------------------

bool Request::connected() const noexcept { return native_ != nullptr && !native_ours_ && conn_ && conn_->open; }

std::string_view Request::header(const char* name, bool* found) const noexcept {
  const char* v = native_ ? evhttp_find_header(evhttp_request_get_input_headers(native_), name) : nullptr;
  if (found) *found = v != nullptr;
  return v ? std::string_view(v) : std::string_view();
}

std::string_view Request::body() noexcept {
  if (native_ == nullptr) return {};
  evbuffer* in = evhttp_request_get_input_buffer(native_);
  size_t n = evbuffer_get_length(in);
  if (n == 0) return {};
  const unsigned char* p = evbuffer_pullup(in, -1);
  return p ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view();
}

void Request::link_header(evkeyval* kv) noexcept {
  if (!connected()) return;
  if (linked_ == kMaxLinked) {
    add_header(kv->key, kv->value);
    return;
  }
  TAILQ_INSERT_TAIL(evhttp_request_get_output_headers(native_), kv, next);
  linked_kv_[linked_++] = kv;
}

void Request::add_header(const char* name, const char* value) noexcept {
  if (connected()) evhttp_add_header(evhttp_request_get_output_headers(native_), name, value);
}

void Request::respond(int code, const char* reason, std::string_view body, evbuffer* shared) noexcept {
  if (connected()) {
    evhttp_request* r = native_;
    native_ = nullptr;  // evhttp frees it once written, or with the connection
    if (force_close_ || conn_->srv->stopping_)
      evhttp_add_header(evhttp_request_get_output_headers(r), "Connection", "close");
    if (!is_head_) {
      evbuffer* out = evhttp_request_get_output_buffer(r);
      if (shared != nullptr) evbuffer_add_buffer_reference(out, shared);
      else if (!body.empty()) evbuffer_add(out, body.data(), body.size());
    }
    evhttp_send_reply(r, code, reason, nullptr);  // writes the head into the connection's buffer
    evkeyvalq* h = evhttp_request_get_output_headers(r);
    for (int i = 0; i < linked_; i++) TAILQ_REMOVE(h, linked_kv_[i], next);
    linked_ = 0;
    // Write the answer now rather than when the loop next reports the socket writable:
    // most answers fit the socket buffer, and then the write interest evhttp has just
    // turned on is turned off again within this loop turn (the change list folds both: no
    // epoll_ctl, no extra wake-up). evhttp learns that the answer is out from its write
    // callback, run from the deferred queue as if the bufferevent had written it. What the
    // socket does not take is written by the bufferevent as usual.
    bufferevent* bev = conn_->bev;
    evbuffer* out = bufferevent_get_output(bev);
    evbuffer_unfreeze(out, 1);
    evbuffer_write(out, conn_->fd);
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) == 0) bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
  } else if (native_ != nullptr && native_ours_) {
    evhttp_request_free(native_);
    native_ = nullptr;
  }
  done();
}

void Request::release() noexcept {
  Conn* c = conn_;
  if (connected()) {
    // Without an answer the client would wait: close the connection (evhttp frees the
    // request with it), from the reap event rather than from inside our caller.
    native_ = nullptr;
    c->close_queued = true;
    c->srv->retire(c);
  } else if (native_ != nullptr && native_ours_) {
    evhttp_request_free(native_);
    native_ = nullptr;
  }
  done();
}

void Request::done() noexcept {
  Conn* c = conn_;
  gone_fn_ = nullptr;
  linked_ = 0;
  c->with_handler = false;
  if (!c->open && !c->close_queued) c->srv->retire(c);
}

// --- Server --------------------------------------------------------------------------------

Server::Server(event_base* base, int listen_fd, bool own_fd, const ServerOptions& opt, Handler* handler)
    : base_(base), listen_fd_(listen_fd), own_fd_(own_fd), opt_(opt), handler_(handler) {
  idle_tv_ = ms_to_tv(uint64_t(opt_.idle_timeout_s) * 1000);
  request_tv_ = ms_to_tv(uint64_t(opt_.request_timeout_s) * 1000);
}

Server::~Server() {
  close_all();
  for (bufferevent* b : fresh_) bufferevent_decref(b);
  fresh_.clear();
  on_reap(-1, 0, this);
  if (own_fd_ && listen_fd_ >= 0) ::close(listen_fd_);
}

bool Server::start() noexcept {
  attach_ev_.reset(event_new(base_, -1, 0, on_attach, this));
  accept_resume_ev_.reset(evtimer_new(base_, on_accept_resume, this));
  reap_ev_.reset(event_new(base_, -1, 0, on_reap, this));
  limit_ev_.reset(event_new(base_, -1, EV_PERSIST, on_limit_tick, this));
  http_ = evhttp_new(base_);
  if (!attach_ev_ || !accept_resume_ev_ || !reap_ev_ || !limit_ev_ || !http_) return false;
  try {
    fresh_.reserve(256);
  } catch (...) {
    return false;
  }
  evhttp_set_max_headers_size(http_, ev_ssize_t(opt_.max_head));
  evhttp_set_max_body_size(http_, ev_ssize_t(opt_.max_body));
  // A body over the limit is read and dropped before the 413, so that the client, still
  // sending, sees the answer instead of a reset connection.
  evhttp_set_flags(http_, EVHTTP_SERVER_LINGERING_CLOSE);
  // The idle timeout, evhttp's own (the silence before a request; its write half is set
  // per connection to --request-timeout).
  evhttp_set_timeout_tv(http_, &idle_tv_);
  // Every method reaches the router, which answers 405 (JSON, with Allow) itself.
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                        EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_, on_request, this);
  evhttp_set_bevcb(http_, on_new_bufferevent, this);
  // Our own listener on the (shared or --reuseport) socket, so that accept errors pause
  // accepting instead of spinning.
  evconnlistener* l = evconnlistener_new(base_, nullptr, nullptr, LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd_);
  if (l == nullptr) return false;
  evconnlistener_set_error_cb(l, on_accept_error);
  bound_ = evhttp_bind_listener(http_, l);
  if (bound_ == nullptr) {
    evconnlistener_free(l);
    return false;
  }
  // The error callback gets the listener's argument, which evhttp_bind_listener set to
  // the evhttp: the registry below leads from it back to this server.
  std::lock_guard<std::mutex> lock(registry_mutex);
  try {
    registry.emplace_back(http_, this);
  } catch (...) {
    return false;
  }
  metrics::watch_listener(listen_fd_);
  return true;
}

void Server::on_accept_error(evconnlistener* l, void* arg) noexcept {
  int err = errno;
  Server* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    for (auto& [h, srv] : registry)
      if (h == arg) s = srv;
  }
  if (s == nullptr) return;
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
    // Out of descriptors or memory: the pending connection stays in the backlog and the
    // listener stays readable. Stop accepting for a moment instead of spinning.
    if (!s->accept_error_logged_) {
      RT_LOG(warn, "accept failed, pausing accepts").kv("error", strerror(err)).kv("pause_ms", kAcceptBackoffMs);
      s->accept_error_logged_ = true;
    }
    s->accept_error_paused_ = true;
    s->update_accepting();
    timeval tv = ms_to_tv(kAcceptBackoffMs);
    evtimer_add(s->accept_resume_ev_.get(), &tv);
    return;
  }
  RT_LOG(warn, "accept failed").kv("error", strerror(err));
}

void Server::on_accept_resume(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  s->accept_error_paused_ = false;
  s->update_accepting();
}

void Server::update_accepting() noexcept {
  if (stopping_ || bound_ == nullptr) return;
  bool full = opt_.max_connections > 0 && conns_ >= opt_.max_connections;
  bool ticking = event_pending(limit_ev_.get(), EV_TIMEOUT, nullptr);
  if (full && !ticking) {
    metrics::get().accept_pauses.fetch_add(1, std::memory_order_relaxed);
    uint64_t now = now_ms();
    if (now - limit_logged_ms_ >= 60000 || limit_logged_ms_ == 0) {
      // Once a minute at most: a server at its bound may reach it many times a second.
      RT_LOG(warn, "at the connection bound: accepting paused until a connection closes")
          .kv("connections", conns_)
          .kv("max_connections", opt_.max_connections);
      limit_logged_ms_ = now;
    }
    timeval tv = ms_to_tv(kLimitTickMs);
    event_add(limit_ev_.get(), &tv);
  } else if (!full && ticking) {
    event_del(limit_ev_.get());
  }
  bool want = !accept_error_paused_ && !full;
  if (want == accepting_) return;
  evconnlistener* l = evhttp_bound_socket_get_listener(bound_);
  if (want) evconnlistener_enable(l);
  else evconnlistener_disable(l);  // also stops the accept loop we may be called from
  accepting_ = want;
}

// evhttp's hook for a new connection's bufferevent: ours, so that we can attach our state
// once evhttp has set the connection up (on_attach, in the same loop turn, before any I/O).
bufferevent* Server::on_new_bufferevent(event_base* base, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  if (s->accept_error_logged_) {
    RT_LOG(info, "accepting again");
    s->accept_error_logged_ = false;  // the next episode is logged again
  }
  bufferevent* bev = bufferevent_socket_new(base, -1, 0);
  if (bev == nullptr) return nullptr;  // evhttp makes its own; the connection runs without our state
  try {
    s->fresh_.push_back(bev);
  } catch (...) {
    return bev;
  }
  // Counted from here until evhttp closes it (on_close), or until attach finds no state.
  // At the bound this disables the listener, which ends the accept loop we are called from.
  s->conns_++;
  metrics::get().connections.fetch_add(1, std::memory_order_relaxed);
  s->update_accepting();
  // Our reference keeps the bufferevent valid until on_attach, even if evhttp gives the
  // connection up before (out of memory).
  bufferevent_incref(bev);
  event_active(s->attach_ev_.get(), EV_TIMEOUT, 1);
  return bev;
}

void Server::on_attach(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  std::vector<bufferevent*> batch;
  batch.swap(s->fresh_);
  for (bufferevent* bev : batch) s->attach(bev);
  batch.clear();
  if (s->fresh_.empty()) s->fresh_.swap(batch);  // keep the capacity
}

void Server::attach(bufferevent* bev) noexcept {
  bufferevent_data_cb rcb = nullptr, wcb = nullptr;
  bufferevent_event_cb ecb = nullptr;
  void* cbarg = nullptr;
  bufferevent_getcb(bev, &rcb, &wcb, &ecb, &cbarg);
  int fd = bufferevent_getfd(bev);
  // evhttp installs its bufferevent callbacks with its connection as their argument; that
  // is the only way to reach a connection before its first request. No callbacks: evhttp
  // already gave the connection up.
  auto* evcon = static_cast<evhttp_connection*>(cbarg);
  Conn* c = nullptr;
  if (ecb != nullptr && evcon != nullptr && fd >= 0 && evhttp_connection_get_bufferevent(evcon) == bev) {
    try {
      if (by_fd_.size() <= size_t(fd)) by_fd_.resize(size_t(fd) + 1, nullptr);
      c = new Conn(this, bev, evcon, fd);
    } catch (...) {
      c = nullptr;
    }
  }
  if (c != nullptr) {
    event_assign(&c->deadline, base_, -1, 0, Conn::on_deadline, c);
    c->req.conn_ = c;
    by_fd_[size_t(fd)] = c;
    evhttp_connection_set_closecb(evcon, Conn::on_close, c);
    bufferevent_set_timeouts(bev, &idle_tv_, &request_tv_);
    bufferevent_setwatermark(bev, EV_READ, 0, opt_.max_head + opt_.max_body + kQueuedInput);
    c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), Conn::on_input, c);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->since_ms = now_ms();
    c->wait_for_request();
    // The first request is due within the request timeout of the accept: a connection
    // that sends nothing must not hold a slot for the whole idle timeout.
    event_add(&c->deadline, &request_tv_);
  } else {
    connection_closed();  // gone already, or running without our state: not counted
  }
  bufferevent_decref(bev);
}

void Server::connection_closed() noexcept {
  if (conns_ == 0) return;
  conns_--;
  metrics::get().connections.fetch_sub(1, std::memory_order_relaxed);
  update_accepting();
}

void Server::on_request(evhttp_request* r, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  evhttp_connection* evcon = evhttp_request_get_connection(r);
  bufferevent* bev = evcon ? evhttp_connection_get_bufferevent(evcon) : nullptr;
  int fd = bev ? bufferevent_getfd(bev) : -1;
  Conn* c = fd >= 0 && size_t(fd) < s->by_fd_.size() ? s->by_fd_[size_t(fd)] : nullptr;
  if (c == nullptr || c->evcon != evcon || c->with_handler) {
    evhttp_send_error(r, 503, "Service Unavailable");  // no state for it (out of memory)
    return;
  }
  event_del(&c->deadline);
  Request& q = c->req;
  q.native_ = r;
  q.native_ours_ = false;
  q.force_close_ = false;
  q.gone_fn_ = nullptr;
  q.gone_arg_ = nullptr;
  q.linked_ = 0;
  q.method_ = evhttp_request_get_command(r);
  q.is_head_ = q.method_ == EVHTTP_REQ_HEAD;
  const char* uri = evhttp_request_get_uri(r);
  q.target_ = uri ? std::string_view(uri) : std::string_view();
  const evhttp_uri* u = evhttp_request_get_evhttp_uri(r);
  const char* path = u ? evhttp_uri_get_path(u) : nullptr;
  const char* query = u ? evhttp_uri_get_query(u) : nullptr;
  q.path_ = path ? std::string_view(path) : std::string_view();
  q.query_ = query ? std::string_view(query) : std::string_view();
  q.started_us_ = now_us();
  c->with_handler = true;
  c->busy = true;
  s->busy_++;
  evhttp_request_set_on_complete_cb(r, Conn::on_complete, c);
  // While the request is with its handler: no read timeout (a held poll is bounded by the
  // poll timeout), and reading on without evhttp's read callback so that a client closing
  // is seen at once (evhttp stopped reading before calling us).
  bufferevent_data_cb rcb = nullptr, wcb = nullptr;
  bufferevent_event_cb ecb = nullptr;
  void* cbarg = nullptr;
  bufferevent_getcb(bev, &rcb, &wcb, &ecb, &cbarg);
  bufferevent_setcb(bev, nullptr, wcb, ecb, cbarg);
  bufferevent_set_timeouts(bev, nullptr, &s->request_tv_);
  bufferevent_enable(bev, EV_READ);
  s->handler_->on_request(&q);
}

void Server::retire(Conn* c) noexcept {
  c->next_dead = graveyard_;
  graveyard_ = c;
  if (reap_ev_) event_active(reap_ev_.get(), EV_TIMEOUT, 1);
}

void Server::on_reap(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  while (s->graveyard_ != nullptr) {
    Conn* c = s->graveyard_;
    s->graveyard_ = c->next_dead;
    if (c->close_queued) {
      c->close_queued = false;
      if (c->open) {
        evhttp_connection_free(c->evcon);  // on_close retires it again (with_handler is false)
        continue;
      }
    }
    if (c->open || c->with_handler) continue;  // still in use (retired twice)
    event_del(&c->deadline);
    delete c;
  }
}

void Server::stop_accepting() noexcept {
  stopping_ = true;
  if (limit_ev_) event_del(limit_ev_.get());
  if (bound_ != nullptr) metrics::unwatch_listener(listen_fd_);
  if (bound_ != nullptr && http_ != nullptr) {
    evhttp_del_accept_socket(http_, bound_);  // frees our listener
    bound_ = nullptr;
  }
  accept_resume_ev_.reset();
  if (own_fd_ && listen_fd_ >= 0) {
    // A --reuseport socket of ours: close it now, so that the kernel sends new connections
    // to the other sockets on the port.
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

void Server::close_all() noexcept {
  stop_accepting();
  if (http_ != nullptr) {
    evhttp* h = http_;
    http_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(registry_mutex);
      for (size_t i = 0; i < registry.size(); i++)
        if (registry[i].second == this) registry.erase(registry.begin() + long(i--));
    }
    evhttp_free(h);  // every connection: on_close
  }
}

}  // namespace rt::http
