#include "http_server.hpp"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "log.hpp"

namespace rt::http {

namespace {
constexpr size_t kScratch = 64 << 10;  // one read() per readable event, at most this much
constexpr int kAcceptBatch = 64;       // connections accepted per wake-up
constexpr uint64_t kAcceptBackoffMs = 100;
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
}  // namespace

// One client connection. Owned by the Server (its list while open, its graveyard once
// closed); never freed from inside its own callbacks.
class Conn {
 public:
  Conn(Server* srv, int fd) noexcept : srv_(srv), fd_(fd) {}
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }

  static void on_read(evutil_socket_t, short, void* arg) noexcept;
  static void on_write(evutil_socket_t, short, void* arg) noexcept;

  // The answer of the active request (Request::respond). `close`: close after it.
  void send(std::string_view head, std::string_view body, bool close) noexcept;
  // Writes what the socket takes of pending output without waiting (server shutdown).
  void flush_now() noexcept;
  // Closes the socket now: a reading request is freed, the active one detached (its gone
  // callback called). The object itself is freed later by the server.
  void close() noexcept;
  void close_after_request() noexcept;  // Request::release() of a connected request

  bool out_pending() const noexcept { return out_off_ < out_.size(); }

  Server* srv_;
  int fd_;
  EventPtr rev_, wev_;
  Conn* prev_ = nullptr;
  Conn* next_ = nullptr;
  std::string in_;          // unparsed input: a partial request, or requests behind the active one
  std::string out_;         // answer bytes the socket did not take yet, from out_off_
  size_t out_off_ = 0;
  HeadScan scan_;
  Request* reading_ = nullptr;  // head parsed, body being read (owned here)
  Request* active_ = nullptr;   // with the handler, not answered yet
  uint32_t stamp_ = 0;          // server tick when the current phase began (see the sweep)
  bool closed_ = false;
  bool lingering_ = false;      // final answer sent, write side shut, input dropped
  bool close_after_write_ = false;
  bool linger_wanted_ = false;  // the input was not fully read: linger instead of close
  bool read_paused_ = false;    // too much buffered behind the active request
  bool in_handler_ = false;     // process() is on the stack
  bool want_process_ = false;   // buffered requests wait for the next read event

 private:
  void read_once() noexcept;
  void process(std::string_view buf, bool from_scratch) noexcept;
  void dispatch(Request* r) noexcept;
  void refuse(Request* r, int status, const char* message) noexcept;
  void answered() noexcept;
  void finish_close() noexcept;
  void on_eof() noexcept;
  bool arm_write() noexcept;
  void pause_read() noexcept;
  void resume_read() noexcept;
};

// --- Request ------------------------------------------------------------------------------

std::string_view Request::header(std::string_view name, bool* found) const noexcept {
  std::string_view v;
  bool ok = find_header(head_.headers, name, &v);
  if (found) *found = ok;
  return ok ? v : std::string_view();
}

bool Request::closing() const noexcept {
  return force_close_ || !head_.keep_alive || conn_ == nullptr || conn_->srv_->stopping_;
}

void Request::respond(std::string_view head, std::string_view body) noexcept {
  Conn* c = conn_;
  if (c != nullptr) {
    bool close = closing();
    c->active_ = nullptr;
    conn_ = nullptr;
    if (head_.method == Method::head) body = std::string_view();
    c->send(head, body, close);
  }
  delete this;
}

void Request::release() noexcept {
  Conn* c = conn_;
  if (c != nullptr) {
    c->active_ = nullptr;
    conn_ = nullptr;
    c->close_after_request();
  }
  delete this;
}

// --- Conn: reading ------------------------------------------------------------------------

void Conn::on_read(evutil_socket_t, short, void* arg) noexcept {
  auto* c = static_cast<Conn*>(arg);
  if (c->closed_) return;
  if (c->want_process_) {
    // Requests buffered behind the previous answer (pipelining): handle them first.
    c->want_process_ = false;
    if (!c->in_.empty() && c->active_ == nullptr && !c->out_pending()) c->process(c->in_, false);
    if (c->closed_) return;
  }
  c->read_once();
}

void Conn::read_once() noexcept {
  char* buf = srv_->scratch_;
  ssize_t n = ::read(fd_, buf, kScratch);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    close();
    return;
  }
  if (n == 0) {
    on_eof();
    return;
  }
  if (lingering_) return;  // the final answer is out: input is dropped
  std::string_view data(buf, size_t(n));
  if (active_ != nullptr || out_pending() || close_after_write_) {
    // Behind an unanswered request: keep it (bounded) for later; reading goes on so that a
    // client closing is seen at once.
    try {
      in_.append(data);
    } catch (...) {
      close();
      return;
    }
    if (in_.size() >= srv_->opt_.max_buffered) pause_read();
    return;
  }
  if (in_.empty()) {
    process(data, true);
    return;
  }
  try {
    in_.append(data);
  } catch (...) {
    close();
    return;
  }
  process(in_, false);
}

// Parses and dispatches requests from `buf` (the scratch buffer, or in_) one at a time while
// none is outstanding; keeps what is left in in_.
void Conn::process(std::string_view buf, bool from_scratch) noexcept {
  const ServerOptions& opt = srv_->opt_;
  size_t used = 0;
  while (!closed_ && active_ == nullptr && !out_pending() && !close_after_write_) {
    std::string_view rest = buf.substr(used);
    if (reading_ == nullptr) {
      if (rest.empty()) break;
      if (scan_.pos == 0) stamp_ = srv_->tick_;  // a new request starts: its head/body timeout
      RequestHead h;
      ParseError e;
      HeadStatus st = parse_request_head(rest, opt.limits, &scan_, &h, &e);
      if (st == HeadStatus::incomplete) break;
      Request* r = new (std::nothrow) Request();
      if (r == nullptr) {
        close();
        return;
      }
      r->conn_ = this;
      if (st == HeadStatus::error) {
        if (e.status == 413) {
          // The head is fine: keep it so that the answer knows the method and path.
          try {
            r->raw_.assign(rest.data(), h.head_len);
            h.rebase(rest.data(), r->raw_.data());
            r->head_ = h;
          } catch (...) {
          }
        }
        used = buf.size();
        refuse(r, e.status, e.message);
        break;
      }
      try {
        r->raw_.assign(rest.data(), h.head_len);
      } catch (...) {
        delete r;
        close();
        return;
      }
      h.rebase(rest.data(), r->raw_.data());
      r->head_ = h;
      r->body_left_ = h.content_length;
      used += h.head_len;
      scan_ = HeadScan();
      if (!h.has_body()) {
        dispatch(r);
        continue;
      }
      reading_ = r;
      if (h.expect_continue && h.minor >= 1 && used == buf.size()) send(kContinue, {}, false);
      continue;
    }
    // The body of reading_.
    if (rest.empty()) break;
    Request* r = reading_;
    if (r->head_.chunked) {
      size_t n = 0;
      ParseError e;
      ChunkedDecoder::Status st;
      try {
        st = r->chunked_.feed(rest, opt.limits.max_body, &r->body_, &n, &e);
      } catch (...) {
        e.status = 503;
        e.message = "out of memory";
        st = ChunkedDecoder::Status::error;
      }
      used += n;
      if (st == ChunkedDecoder::Status::need_more) break;
      reading_ = nullptr;
      if (st == ChunkedDecoder::Status::error) {
        used = buf.size();
        refuse(r, e.status, e.message);
        break;
      }
      dispatch(r);
      continue;
    }
    size_t n = rest.size() < r->body_left_ ? rest.size() : size_t(r->body_left_);
    try {
      if (r->body_.empty()) r->body_.reserve(size_t(r->head_.content_length));
      r->body_.append(rest.data(), n);
    } catch (...) {
      reading_ = nullptr;
      used = buf.size();
      refuse(r, 503, "out of memory");
      break;
    }
    used += n;
    r->body_left_ -= n;
    if (r->body_left_ > 0) break;
    reading_ = nullptr;
    dispatch(r);
  }
  if (closed_) return;  // buf may be in_, which close() leaves alone: nothing to keep
  if (lingering_) {
    in_.clear();
    return;
  }
  try {
    if (from_scratch) in_.assign(buf.data() + used, buf.size() - used);
    else in_.erase(0, used);
  } catch (...) {
    close();
    return;
  }
  if (in_.empty() && in_.capacity() > 4096) std::string().swap(in_);  // a held poll keeps no big buffer
  if (in_.size() >= opt.max_buffered && (active_ != nullptr || out_pending())) pause_read();
}

void Conn::dispatch(Request* r) noexcept {
  active_ = r;
  r->started_us_ = now_us();
  stamp_ = srv_->tick_;
  bool nested = in_handler_;
  in_handler_ = true;
  srv_->handler_->on_request(r);  // may respond (and even close us) before returning
  in_handler_ = nested;
}

// Answers a request the server refuses itself, then lingers: the rest of the input is not
// understood (or not wanted), so the connection cannot carry another request.
void Conn::refuse(Request* r, int status, const char* message) noexcept {
  active_ = r;
  r->force_close_ = true;
  r->started_us_ = now_us();
  linger_wanted_ = true;
  if (reading_ != nullptr && reading_ != r) {
    delete reading_;
    reading_ = nullptr;
  }
  std::string text;
  try {
    const ParseLimits& lim = srv_->opt_.limits;
    if (status == 413) text = "body larger than " + std::to_string(lim.max_body) + " bytes";
    else if (status == 414) text = "URL longer than " + std::to_string(lim.max_url) + " bytes";
    else text = message;
  } catch (...) {
    text.clear();
  }
  if (srv_->opt_.send_error != nullptr) {
    srv_->opt_.send_error(r, status, text.empty() ? std::string_view(message) : std::string_view(text),
                          srv_->opt_.send_error_ctx);
  } else {
    r->release();
  }
}

void Conn::on_eof() noexcept {
  if (active_ == nullptr && out_pending() && !lingering_) {
    // The client half-closed but may still read its answer: finish writing, then close.
    pause_read();
    close_after_write_ = true;
    return;
  }
  close();  // an outstanding request is detached (a held poll's client went away)
}

void Conn::pause_read() noexcept {
  if (read_paused_ || !rev_) return;
  event_del(rev_.get());
  read_paused_ = true;
}

void Conn::resume_read() noexcept {
  if (!read_paused_ || closed_) return;
  read_paused_ = false;
  event_add(rev_.get(), nullptr);
}

// --- Conn: writing ------------------------------------------------------------------------

void Conn::send(std::string_view head, std::string_view body, bool close_it) noexcept {
  if (closed_) return;
  if (close_it) close_after_write_ = true;
  try {
    if (out_pending()) {
      out_.append(head);
      out_.append(body);
      return;
    }
    iovec iov[2] = {{const_cast<char*>(head.data()), head.size()}, {const_cast<char*>(body.data()), body.size()}};
    size_t total = head.size() + body.size();
    ssize_t n = body.empty() ? ::write(fd_, head.data(), head.size()) : ::writev(fd_, iov, 2);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        close();
        return;
      }
      n = 0;
    }
    if (size_t(n) < total) {
      out_.clear();
      out_off_ = 0;
      if (size_t(n) < head.size()) {
        out_.append(head.substr(size_t(n)));
        out_.append(body);
      } else {
        out_.append(body.substr(size_t(n) - head.size()));
      }
      stamp_ = srv_->tick_;
      if (!arm_write()) close();
      return;
    }
  } catch (...) {
    close();
    return;
  }
  if (head.data() != kContinue) answered();
}

bool Conn::arm_write() noexcept {
  if (!wev_) {
    wev_.reset(event_new(srv_->base_, fd_, EV_WRITE | EV_PERSIST, on_write, this));
    if (!wev_) return false;
  }
  return event_add(wev_.get(), nullptr) == 0;
}

void Conn::on_write(evutil_socket_t, short, void* arg) noexcept {
  auto* c = static_cast<Conn*>(arg);
  if (c->closed_) return;
  ssize_t n = ::write(c->fd_, c->out_.data() + c->out_off_, c->out_.size() - c->out_off_);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    c->close();
    return;
  }
  c->out_off_ += size_t(n);
  c->stamp_ = c->srv_->tick_;
  if (c->out_pending()) return;
  std::string().swap(c->out_);
  c->out_off_ = 0;
  event_del(c->wev_.get());
  // Interim 100 Continue done, body still to come: nothing was answered yet.
  if (c->active_ == nullptr && c->reading_ == nullptr) c->answered();
  else if (c->reading_ != nullptr && !c->in_.empty()) {
    c->want_process_ = true;
    event_active(c->rev_.get(), EV_READ, 1);
  }
}

void Conn::flush_now() noexcept {
  if (closed_ || !out_pending()) return;
  ssize_t n = ::write(fd_, out_.data() + out_off_, out_.size() - out_off_);
  if (n > 0) out_off_ += size_t(n);
}

// An answer is completely written: close, or go on with the next request.
void Conn::answered() noexcept {
  if (close_after_write_) {
    finish_close();
    return;
  }
  stamp_ = srv_->tick_;  // idle from now (or a buffered request starts)
  resume_read();
  if (!in_.empty() && !in_handler_) {
    // Pipelined requests already buffered: handle them from the read event's callback, not
    // from inside the caller of respond().
    want_process_ = true;
    event_active(rev_.get(), EV_READ, 1);
  }
}

void Conn::finish_close() noexcept {
  if (!linger_wanted_ && in_.empty() && reading_ == nullptr) {
    close();
    return;
  }
  // Closing with unread input would make the kernel send RST, which can destroy the answer
  // before the client reads it: shut our side and drop input until EOF or linger_s.
  ::shutdown(fd_, SHUT_WR);
  lingering_ = true;
  stamp_ = srv_->tick_;
  std::string().swap(in_);
  if (reading_ != nullptr) {
    delete reading_;
    reading_ = nullptr;
  }
  resume_read();
}

void Conn::close_after_request() noexcept {
  linger_wanted_ = true;
  close_after_write_ = true;
  if (!out_pending()) finish_close();
}

void Conn::close() noexcept {
  if (closed_) return;
  closed_ = true;
  if (reading_ != nullptr) {
    delete reading_;
    reading_ = nullptr;
  }
  if (rev_) event_del(rev_.get());
  if (wev_) event_del(wev_.get());
  ::close(fd_);
  fd_ = -1;
  srv_->unlink(this);
  srv_->retire(this);
  if (active_ != nullptr) {
    Request* r = active_;
    active_ = nullptr;
    r->conn_ = nullptr;
    Request::GoneFn fn = r->gone_fn_;
    r->gone_fn_ = nullptr;
    if (fn != nullptr) fn(r->gone_arg_);
  }
}

// --- Server -------------------------------------------------------------------------------

Server::Server(event_base* base, int listen_fd, const ServerOptions& opt, Handler* handler)
    : base_(base), listen_fd_(listen_fd), opt_(opt), handler_(handler) {}

Server::~Server() {
  close_all();
  on_reap(-1, 0, this);
  delete[] scratch_;
}

bool Server::start() noexcept {
  scratch_ = new (std::nothrow) char[kScratch];
  accept_ev_.reset(event_new(base_, listen_fd_, EV_READ | EV_PERSIST, on_accept, this));
  accept_resume_ev_.reset(evtimer_new(base_, on_accept_resume, this));
  sweep_ev_.reset(event_new(base_, -1, EV_PERSIST, on_sweep, this));
  reap_ev_.reset(event_new(base_, -1, 0, on_reap, this));
  if (!scratch_ || !accept_ev_ || !accept_resume_ev_ || !sweep_ev_ || !reap_ev_) return false;
  timeval second = ms_to_tv(1000);
  return event_add(accept_ev_.get(), nullptr) == 0 && event_add(sweep_ev_.get(), &second) == 0;
}

void Server::close_all() noexcept {
  stopping_ = true;
  accept_ev_.reset();
  accept_resume_ev_.reset();
  sweep_ev_.reset();
  while (head_ != nullptr) {
    Conn* c = head_;
    c->flush_now();
    c->close();  // unlinks c
  }
}

void Server::link(Conn* c) noexcept {
  c->prev_ = nullptr;
  c->next_ = head_;
  if (head_) head_->prev_ = c;
  head_ = c;
  conn_count_++;
}

void Server::unlink(Conn* c) noexcept {
  if (c->prev_) c->prev_->next_ = c->next_;
  else head_ = c->next_;
  if (c->next_) c->next_->prev_ = c->prev_;
  c->prev_ = c->next_ = nullptr;
  conn_count_--;
}

void Server::retire(Conn* c) noexcept {
  c->next_ = graveyard_;
  graveyard_ = c;
  if (reap_ev_) event_active(reap_ev_.get(), EV_TIMEOUT, 1);
}

void Server::on_reap(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  while (s->graveyard_ != nullptr) {
    Conn* c = s->graveyard_;
    s->graveyard_ = c->next_;
    delete c;
  }
}

void Server::on_accept(evutil_socket_t fd, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  for (int i = 0; i < kAcceptBatch && !s->stopping_; i++) {
    int cfd = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors or memory: the pending connection stays in the backlog and the
        // listener stays readable. Stop accepting for a moment instead of spinning.
        if (!s->accept_error_logged_) {
          RT_LOG(warn, "accept failed, pausing accepts").kv("error", strerror(err)).kv("pause_ms", kAcceptBackoffMs);
          s->accept_error_logged_ = true;
        }
        event_del(s->accept_ev_.get());
        timeval tv = ms_to_tv(kAcceptBackoffMs);
        evtimer_add(s->accept_resume_ev_.get(), &tv);
        return;
      }
      RT_LOG(warn, "accept failed").kv("error", strerror(err));
      return;
    }
    if (s->accept_error_logged_) {
      RT_LOG(info, "accepting again");
      s->accept_error_logged_ = false;  // the next episode is logged again
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn* c = new (std::nothrow) Conn(s, cfd);
    if (c == nullptr) {
      ::close(cfd);
      continue;
    }
    c->rev_.reset(event_new(s->base_, cfd, EV_READ | EV_PERSIST, Conn::on_read, c));
    if (!c->rev_ || event_add(c->rev_.get(), nullptr) != 0) {
      delete c;  // closes cfd
      continue;
    }
    c->stamp_ = s->tick_;
    s->link(c);
  }
}

void Server::on_accept_resume(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  if (s->stopping_ || !s->accept_ev_) return;
  event_add(s->accept_ev_.get(), nullptr);
}

// Once a second: timeouts by the phase each connection is in. Phases and what bounds them:
// lingering (linger_s), an answer not taken by the client (write_timeout_s since the last
// progress), a request being handled (nothing here: its handler's own timer), a request
// head or body arriving (request_timeout_s since it began), idle between requests
// (idle_timeout_s).
void Server::on_sweep(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Server*>(arg);
  s->tick_++;
  const ServerOptions& o = s->opt_;
  uint32_t now = s->tick_;
  for (Conn* c = s->head_; c != nullptr;) {
    Conn* next = c->next_;
    uint32_t age = now - c->stamp_;
    bool expired;
    // `age` whole ticks have passed since the phase began, so more than `age - 1` seconds:
    // `age > limit` closes after at least `limit` and under `limit + 1` seconds.
    if (c->lingering_) expired = age > o.linger_s;
    else if (c->out_pending()) expired = age > o.write_timeout_s;
    else if (c->active_ != nullptr) expired = false;
    else if (c->reading_ != nullptr || !c->in_.empty()) expired = age > o.request_timeout_s;
    else expired = age > o.idle_timeout_s;
    if (expired) c->close();
    c = next;
  }
}

}  // namespace rt::http
