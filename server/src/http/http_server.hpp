// rt's HTTP server: libevent's evhttp, one per worker event loop, and the thin Request
// facade every handler gets instead of a raw evhttp_request.
//
// evhttp parses requests (heads, bodies, chunked encoding, Expect: 100-continue, keep-alive,
// HTTP/1.0, pipelining), enforces the head and body size limits and answers malformed input
// itself. On top of it this module adds what evhttp 2.1.12 does not do:
// - client-drop detection while a request is with its handler: evhttp stops reading a
//   connection once a request is dispatched, so it would not notice the client closing a
//   held poll. Reading is switched back on (without evhttp's read callback, so pipelined
//   bytes just wait in the input buffer, bounded by a watermark); EOF then reaches evhttp's
//   error path, which detaches the request and frees the connection;
// - the request timeout: a request head/body must arrive within --request-timeout of its
//   first byte, a connection's first request within --request-timeout of the accept
//   (evhttp's own timeout only bounds the silence between two reads);
// - a bound on open connections (--max-connections, this server's share of it): at the
//   bound accepting pauses, so that newcomers wait in the kernel's listen queue, and while
//   some wait, connections that are not doing anything useful (idle between requests, or
//   reading one request for over a second) are closed to make room for them;
// - no timeout at all while a request is with its handler: a held poll is bounded by the
//   poll timeout, never by the connection's idle timeout;
// - a stop that stops accepting at once and leaves answers already given time to be written.
//
// Request lifetime (the contract every handler follows):
// - The router gets a Request* and owns it until it calls respond() (exactly once) or
//   release(). A connection carries one request at a time.
// - If the connection dies first (client closed, error, server shutdown), the Request is
//   detached: connected() turns false and, when the handler registered a gone callback
//   (held polls do), that callback is called exactly once. The callback must only record
//   the fact and defer work: never respond(), release() or free anything from inside it.
//   The handler still owns the Request: respond() on a detached Request just frees it, and
//   release() frees it without an answer.
// - respond() may be called synchronously from inside the router or later from any
//   callback of the same event loop. Nothing is freed from inside evhttp's callbacks: a
//   request evhttp detached is freed by respond()/release(), connections' state from a
//   separate event.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "util.hpp"

namespace rt::http {

class Server;
struct Conn;

class Request {
 public:
  using GoneFn = void (*)(void* arg) noexcept;

  // EVHTTP_REQ_GET, EVHTTP_REQ_POST, ... (evhttp answers unknown methods itself).
  evhttp_cmd_type method() const noexcept { return method_; }
  std::string_view target() const noexcept { return target_; }  // as sent
  std::string_view path() const noexcept { return path_; }      // percent-encoded
  std::string_view query() const noexcept { return query_; }    // empty when none
  // A header's value (first of that name); empty view when absent (*found false).
  std::string_view header(const char* name, bool* found = nullptr) const noexcept;
  // The whole body (chunked bodies decoded by evhttp), contiguous.
  std::string_view body() noexcept;
  // Arrival of the complete request (now_us()).
  uint64_t started_us() const noexcept { return started_us_; }

  // False once the connection is gone (the answer would go nowhere).
  bool connected() const noexcept;
  // Asks for the connection to be closed after this answer.
  void close_after() noexcept { force_close_ = true; }

  // Registers fn(arg), called once if the connection dies before the answer (see above).
  // nullptr clears it.
  void on_gone(GoneFn fn, void* arg) noexcept {
    gone_fn_ = fn;
    gone_arg_ = arg;
  }

  // --- answering (http_reply builds the headers; this sends them) -----------------------
  // Links `kv` into the answer's header list without copying it. `kv` must stay valid and
  // unchanged until respond() returns, which unlinks it again (evhttp writes the headers
  // out synchronously). At most kMaxLinked per answer; beyond that it is copied.
  void link_header(evkeyval* kv) noexcept;
  // Adds a copy of a header (evhttp_add_header): for the rare ones.
  void add_header(const char* name, const char* value) noexcept;
  // Sends status `code` with the headers given so far and `body` (copied), or the bytes of
  // `shared` (by reference: not copied; `shared` may be freed by its owner right after).
  // The body is dropped for HEAD. Then frees this Request. Called exactly once (or release()).
  void respond(int code, const char* reason, std::string_view body, evbuffer* shared = nullptr) noexcept;

  // Frees this Request without an answer. If it is still connected the connection is
  // closed (the client would otherwise wait forever).
  void release() noexcept;

  static constexpr int kMaxLinked = 12;

 private:
  friend class Server;
  friend struct Conn;
  Request() = default;
  ~Request() = default;
  void done() noexcept;  // the handler is finished with it

  Conn* conn_ = nullptr;
  evhttp_request* native_ = nullptr;  // nullptr once evhttp freed it (shutdown)
  bool native_ours_ = false;          // evhttp detached it (client gone): we free it
  bool force_close_ = false;
  bool is_head_ = false;
  evhttp_cmd_type method_ = EVHTTP_REQ_GET;
  std::string_view target_, path_, query_;  // into native_'s strings
  uint64_t started_us_ = 0;
  GoneFn gone_fn_ = nullptr;
  void* gone_arg_ = nullptr;
  int linked_ = 0;
  evkeyval* linked_kv_[kMaxLinked] = {};
};

// Receives every complete request (see the lifetime contract above).
class Handler {
 public:
  virtual void on_request(Request* req) noexcept = 0;

 protected:
  ~Handler() = default;
};

struct ServerOptions {
  size_t max_head = 80 << 10;       // request line + headers (evhttp answers 400 beyond)
  size_t max_body = 64 << 10;       // evhttp answers 413 beyond
  uint32_t idle_timeout_s = 85;     // keep-alive connection with no request in progress
  uint32_t request_timeout_s = 30;  // a request head/body from its first byte; an unread answer
  size_t max_connections = 0;       // open connections of this server; 0: no bound
  size_t listener_sharers = 1;      // servers accepting from the same listening socket
};

class Server {
 public:
  // Serves on `listen_fd` (listening, non-blocking) on `base`; `own_fd`: close it when done
  // (a --reuseport socket of this worker alone). Requests go to `handler`.
  Server(event_base* base, int listen_fd, bool own_fd, const ServerOptions& opt, Handler* handler);
  ~Server();  // closes every connection (as close_all()) and frees them
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates the evhttp and the listener. Returns false when libevent fails.
  bool start() noexcept;

  // Open connections (accepted, not closed yet).
  size_t connections() const noexcept { return conns_; }

  // Stops accepting; every answer from now on closes its connection.
  void stop_accepting() noexcept;
  // Requests dispatched whose answer is not completely written yet.
  size_t busy() const noexcept { return busy_; }
  // Closes every connection now (evhttp_free): outstanding Requests are detached (their
  // gone callbacks called). Implies stop_accepting().
  void close_all() noexcept;

  bool stopping() const noexcept { return stopping_; }

 private:
  friend class Request;
  friend struct Conn;

  static bufferevent* on_new_bufferevent(event_base* base, void* arg) noexcept;
  static void on_attach(evutil_socket_t, short, void* arg) noexcept;
  static void on_request(evhttp_request* req, void* arg) noexcept;
  static void on_accept_error(evconnlistener* l, void* arg) noexcept;
  static void on_accept_resume(evutil_socket_t, short, void* arg) noexcept;
  static void on_reap(evutil_socket_t, short, void* arg) noexcept;
  static void on_limit_tick(evutil_socket_t, short, void* arg) noexcept;
  void attach(bufferevent* bev) noexcept;
  void connection_closed() noexcept;
  // Enables or disables the listener: accepting unless stopping, paused after an accept
  // error, or at the connection bound.
  void update_accepting() noexcept;
  // At the bound with newcomers waiting: closes up to `n` connections that are idle or
  // slow (see kShedGraceMs). Returns how many.
  size_t shed(size_t n) noexcept;
  void retire(Conn* c) noexcept;  // c's connection is gone and its request released: free it later

  event_base* base_;
  int listen_fd_;
  bool own_fd_;
  ServerOptions opt_;
  Handler* handler_;
  evhttp* http_ = nullptr;
  evhttp_bound_socket* bound_ = nullptr;
  EventPtr attach_ev_, accept_resume_ev_, reap_ev_, limit_ev_;
  std::vector<bufferevent*> fresh_;  // accepted, not attached yet (one ref each)
  std::vector<Conn*> by_fd_;         // attached connections by socket
  Conn* graveyard_ = nullptr;
  size_t busy_ = 0;
  size_t conns_ = 0;                 // open connections (counted from evhttp's bufferevent hook)
  bool accept_error_logged_ = false;
  bool accept_error_paused_ = false;
  bool accepting_ = true;            // the listener is enabled
  uint64_t limit_logged_ms_ = 0;
  bool stopping_ = false;
  timeval idle_tv_{}, request_tv_{};
};

}  // namespace rt::http
