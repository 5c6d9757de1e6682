// rt's HTTP/1.1 server on libevent events (no evhttp, no bufferevents): the listener, one
// Conn per client connection, the Request handed to the router, and the per-worker sweep
// that enforces timeouts.
//
// Costs per request, by design: one read() into a per-worker 64 KiB scratch buffer, one
// write()/writev() of the whole answer, and no epoll_ctl: a connection's read event
// (level-triggered, EV_PERSIST) is added once for its life and stays on, also while a poll
// is held, so a client closing is seen at once. A write event is armed only after a short
// write. Only an unparsed leftover (a partial or pipelined request) is copied into the
// connection's own buffer: an idle or held connection keeps no big buffer, and no timer
// (one sweep per second per worker walks an intrusive list of connections).
//
// Request lifetime (the contract every handler follows):
// - The router gets a Request* and owns it until it calls respond() (exactly once) or
//   release(). Each Request is answered in order: the next pipelined request on the same
//   connection is read only after this one's answer.
// - If the connection dies first (client closed, error, server shutdown), the Request is
//   detached from it: connected() turns false and, when the handler registered a gone
//   callback (held polls do), that callback is called exactly once. The callback must only
//   record the fact and defer work: never respond(), release() or free anything from inside
//   it. The handler still owns the Request: respond() on a detached Request just frees it,
//   and release() frees it without an answer.
// - respond() may be called synchronously from inside the router (while the connection is
//   in its read handler) or later from any callback of the same event loop. The Request is
//   freed by it; the connection is never freed from inside its own callbacks (closed
//   connections are freed from a separate event).
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "http_request_parser.hpp"
#include "util.hpp"

namespace rt::http {

class Conn;
class Server;

class Request {
 public:
  using GoneFn = void (*)(void* arg) noexcept;

  Method method() const noexcept { return head_.method; }
  std::string_view method_name() const noexcept { return head_.method_name; }
  std::string_view target() const noexcept { return head_.target; }  // as sent
  std::string_view path() const noexcept { return head_.path; }      // percent-encoded
  std::string_view query() const noexcept { return head_.query; }    // empty when none
  int minor_version() const noexcept { return head_.minor; }
  // A header's value (first of that name, trimmed); empty view when absent (*found false).
  std::string_view header(std::string_view name, bool* found = nullptr) const noexcept;
  std::string_view body() const noexcept { return body_; }
  // Arrival of the complete request (now_us()).
  uint64_t started_us() const noexcept { return started_us_; }

  // False once the connection is gone (the answer would go nowhere).
  bool connected() const noexcept { return conn_ != nullptr; }
  // True when the answer must say "Connection: close" (the client asked for it, HTTP/1.0
  // without keep-alive, an error the connection cannot recover from, server stopping).
  bool closing() const noexcept;
  // Asks for the connection to be closed after this answer.
  void close_after() noexcept { force_close_ = true; }

  // Registers fn(arg), called once if the connection dies before the answer (see above).
  // nullptr clears it.
  void on_gone(GoneFn fn, void* arg) noexcept {
    gone_fn_ = fn;
    gone_arg_ = arg;
  }

  // Sends the answer `head` (status line and headers, ending in the blank line) followed by
  // `body` (dropped for HEAD requests), then frees this Request. Called exactly once (or
  // release()). `head` should carry "Connection: close" when closing() is true.
  void respond(std::string_view head, std::string_view body) noexcept;

  // Frees this Request without an answer. If it is still connected the connection is
  // closed (the client would otherwise wait forever).
  void release() noexcept;

 private:
  friend class Conn;
  friend class Server;
  Request() = default;
  ~Request() = default;

  Conn* conn_ = nullptr;
  GoneFn gone_fn_ = nullptr;
  void* gone_arg_ = nullptr;
  std::string raw_;          // the head's bytes; head_'s views point into it
  RequestHead head_;
  std::string body_;
  ChunkedDecoder chunked_;   // while the body is read
  uint64_t body_left_ = 0;   // Content-Length bytes still to read
  uint64_t started_us_ = 0;
  bool force_close_ = false;
};

// Receives every complete request (see the lifetime contract above).
class Handler {
 public:
  virtual void on_request(Request* req) noexcept = 0;

 protected:
  ~Handler() = default;
};

struct ServerOptions {
  ParseLimits limits;
  uint32_t idle_timeout_s = 85;      // keep-alive connection with no request in progress
  uint32_t request_timeout_s = 30;   // a request head/body that started and stalled
  uint32_t write_timeout_s = 30;     // an answer the client does not read
  uint32_t linger_s = 1;             // reading (and dropping) input after a final error answer
  size_t max_buffered = 64 << 10;    // input buffered while a request is outstanding
  // Answers the server gives itself (malformed requests, limits): the router's wording.
  void (*send_error)(Request* req, int status, std::string_view message, void* ctx) noexcept = nullptr;
  void* send_error_ctx = nullptr;
};

class Server {
 public:
  // Accepts on `listen_fd` (non-blocking, owned by the caller) on `base`; requests go to
  // `handler`. Call start() to begin.
  Server(event_base* base, int listen_fd, const ServerOptions& opt, Handler* handler);
  ~Server();  // closes every connection (as close_all()) and frees them
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds the accept and sweep events. Returns false when libevent fails.
  bool start() noexcept;

  // Stops accepting and closes every connection now: outstanding Requests are detached
  // (their gone callbacks called). Answers already written are flushed as far as the socket
  // takes them without blocking.
  void close_all() noexcept;

  size_t connections() const noexcept { return conn_count_; }

 private:
  friend class Conn;
  friend class Request;

  static void on_accept(evutil_socket_t fd, short, void* arg) noexcept;
  static void on_accept_resume(evutil_socket_t, short, void* arg) noexcept;
  static void on_sweep(evutil_socket_t, short, void* arg) noexcept;
  static void on_reap(evutil_socket_t, short, void* arg) noexcept;

  void link(Conn* c) noexcept;
  void unlink(Conn* c) noexcept;
  void retire(Conn* c) noexcept;  // c is closed: free it from on_reap

  event_base* base_;
  int listen_fd_;
  ServerOptions opt_;
  Handler* handler_;
  EventPtr accept_ev_, accept_resume_ev_, sweep_ev_, reap_ev_;
  bool accept_error_logged_ = false;
  bool stopping_ = false;
  uint32_t tick_ = 0;          // seconds since start, advanced by the sweep
  Conn* head_ = nullptr;       // every open connection (intrusive, doubly linked)
  Conn* graveyard_ = nullptr;  // closed, waiting for on_reap
  size_t conn_count_ = 0;
  char* scratch_ = nullptr;    // kScratch bytes: every read() lands here first
};

}  // namespace rt::http
