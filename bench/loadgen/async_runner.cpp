#include "async_runner.hpp"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "http.hpp"

namespace bench {
namespace {

struct Runner;

// One client connection. Owned by Runner::conns; its bufferevent is freed when it finishes.
struct Conn {
  Runner* runner = nullptr;
  bufferevent* bev = nullptr;
  size_t index = 0;         // global connection index
  uint64_t sent_ns = 0;
  bool in_body = false;
  size_t body_left = 0;
  int status = 0;
  bool written = false;     // hold: request fully handed to the kernel
  bool answered = false;    // hold: response received (the connection stays open)
  bool finished = false;
};

struct Runner {
  const RunConfig* cfg = nullptr;
  RunResult* res = nullptr;
  event_base* base = nullptr;
  std::vector<Conn> conns;
  size_t opened = 0;        // connections started so far
  size_t connecting = 0;    // started, request not yet written
  size_t written = 0;       // hold: requests written (or failed)
  size_t active = 0;        // not finished
  bool ready_sent = false;
  uint64_t measure_from = 0;
  uint64_t measure_to = UINT64_MAX;
};

void open_more(Runner* r);

void finish(Conn* c, bool error) {
  if (c->finished) return;
  Runner* r = c->runner;
  c->finished = true;
  if (c->answered) {  // hold: already counted; the server closed it afterwards
    bufferevent_free(c->bev);
    c->bev = nullptr;
    return;
  }
  if (error) r->res->errors++;
  if (!c->written) {
    c->written = true;
    r->connecting--;
    r->written++;
  }
  if (c->bev) {
    bufferevent_free(c->bev);
    c->bev = nullptr;
  }
  r->active--;
  if (r->active == 0) event_base_loopbreak(r->base);
  open_more(r);
}

void maybe_ready(Runner* r) {
  if (r->ready_sent || r->written < r->cfg->conns) return;
  r->ready_sent = true;
  if (r->cfg->ready_fd >= 0) {
    char b = 'r';
    (void)!write(r->cfg->ready_fd, &b, 1);
  }
}

const std::string& request_for(Runner* r, size_t index) {
  const auto& reqs = *r->cfg->requests;
  return reqs[index % reqs.size()];
}

void on_response(Conn* c, uint64_t now) {
  Runner* r = c->runner;
  const RunConfig& cfg = *r->cfg;
  if (cfg.shape == RunConfig::Shape::hold) {
    // Record and keep the connection open: closing it here would add teardown work to the
    // server inside the measured fan-out (a real client re-polls on it instead).
    r->res->done_ns[c->index - cfg.first_index] = now;
    r->res->completed++;
    if (c->status / 100 != 2) r->res->non2xx++;
    c->answered = true;
    r->active--;
    if (r->active == 0) event_base_loopbreak(r->base);
    return;
  }
  if (c->sent_ns >= r->measure_from && now <= r->measure_to) {
    r->res->completed++;
    if (c->status / 100 != 2) r->res->non2xx++;
    uint64_t us = (now - c->sent_ns) / 1000;
    r->res->latencies_us.push_back(uint32_t(std::min<uint64_t>(us, UINT32_MAX)));
  }
  c->sent_ns = now;
  const std::string& req = request_for(r, c->index);
  bufferevent_write(c->bev, req.data(), req.size());
}

void read_cb(bufferevent* bev, void* arg) noexcept {
  Conn* c = static_cast<Conn*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  if (c->answered) {  // hold: nothing more is expected on this connection
    evbuffer_drain(in, evbuffer_get_length(in));
    return;
  }
  for (;;) {
    if (!c->in_body) {
      evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
      if (p.pos < 0) {
        if (evbuffer_get_length(in) > 65536) finish(c, true);
        return;
      }
      size_t head_len = size_t(p.pos);
      const char* h = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(head_len + 4)));
      Head head;
      if (!parse_head(std::string_view(h, head_len), &head) || head.chunked ||
          head.content_length < 0) {
        finish(c, true);  // the servers under test all send Content-Length
        return;
      }
      evbuffer_drain(in, head_len + 4);
      c->status = head.status;
      c->body_left = size_t(head.content_length);
      c->in_body = true;
    }
    size_t have = evbuffer_get_length(in);
    size_t take = std::min(have, c->body_left);
    evbuffer_drain(in, take);
    c->body_left -= take;
    if (c->body_left > 0) return;
    c->in_body = false;
    on_response(c, mono_ns());
    if (c->finished || c->answered || evbuffer_get_length(in) == 0) return;
  }
}

void write_cb(bufferevent* bev, void* arg) noexcept {
  Conn* c = static_cast<Conn*>(arg);
  if (c->written) return;
  Runner* r = c->runner;
  c->written = true;
  r->connecting--;
  r->written++;
  maybe_ready(r);
  open_more(r);
}

void event_cb(bufferevent* bev, short what, void* arg) noexcept {
  Conn* c = static_cast<Conn*>(arg);
  if (what & BEV_EVENT_CONNECTED) return;
  finish(c, true);  // EOF, reset, error: a keep-alive or held connection must not close
  maybe_ready(c->runner);
}

// Opens connections until all are open or `max_connecting` are still being set up.
void open_more(Runner* r) {
  const RunConfig& cfg = *r->cfg;
  while (r->opened < cfg.conns && r->connecting < cfg.max_connecting) {
    Conn* c = &r->conns[r->opened++];
    r->connecting++;
    c->runner = r;
    c->index = cfg.first_index + r->opened - 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      finish(c, true);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in src;
    std::memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + uint32_t(c->index % size_t(cfg.n_sources)));
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) < 0) {
      close(fd);
      finish(c, true);
      continue;
    }
    c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
      close(fd);
      finish(c, true);
      continue;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    const std::string& req = request_for(r, c->index);
    c->sent_ns = mono_ns();
    bufferevent_write(c->bev, req.data(), req.size());
    if (bufferevent_socket_connect(c->bev, reinterpret_cast<const sockaddr*>(&cfg.dst),
                                   sizeof cfg.dst) < 0) {
      finish(c, true);
      continue;
    }
  }
}

void stop_cb(evutil_socket_t, short, void* arg) noexcept {
  event_base_loopbreak(static_cast<event_base*>(arg));
}

struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
struct BaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};

}  // namespace

bool run_phase(const RunConfig& cfg, RunResult* out) {
  std::unique_ptr<event_base, BaseDeleter> base(event_base_new());
  if (!base) return false;
  Runner r;
  r.cfg = &cfg;
  r.res = out;
  r.base = base.get();
  r.conns.resize(cfg.conns);
  r.active = cfg.conns;
  *out = RunResult{};
  bool hold = cfg.shape == RunConfig::Shape::hold;
  if (hold) out->done_ns.assign(cfg.conns, 0);

  uint64_t start = mono_ns();
  double stop_after = hold ? cfg.deadline_s : cfg.warmup_s + cfg.duration_s;
  r.measure_from = hold ? 0 : start + uint64_t(cfg.warmup_s * 1e9);
  r.measure_to = hold ? UINT64_MAX : r.measure_from + uint64_t(cfg.duration_s * 1e9);
  if (!hold) out->latencies_us.reserve(size_t(std::min(cfg.duration_s * 200000.0, 5e7)));

  std::unique_ptr<event, EventDeleter> timer(evtimer_new(base.get(), stop_cb, base.get()));
  timeval tv{long(stop_after), long((stop_after - long(stop_after)) * 1e6)};
  evtimer_add(timer.get(), &tv);
  std::unique_ptr<event, EventDeleter> control;
  if (cfg.control_fd >= 0) {
    control.reset(event_new(base.get(), cfg.control_fd, EV_READ, stop_cb, base.get()));
    event_add(control.get(), nullptr);
  }

  open_more(&r);
  if (r.active > 0) event_base_dispatch(base.get());
  uint64_t end = mono_ns();
  if (!hold) out->measure_ns = std::min(end, r.measure_to) - std::min(end, r.measure_from);
  maybe_ready(&r);  // never leave the parent waiting
  if (hold && cfg.ready_fd >= 0) {
    // Done, before closing the connections: the parent reads the server's CPU time now, so
    // that the teardown below is not counted in the fan-out.
    char b = 'd';
    (void)!write(cfg.ready_fd, &b, 1);
  }
  for (Conn& c : r.conns) {
    if (c.bev) bufferevent_free(c.bev);
    c.bev = nullptr;
  }
  return true;
}

}  // namespace bench
