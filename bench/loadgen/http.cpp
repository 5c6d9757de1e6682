#include "http.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <strings.h>

namespace bench {

uint64_t mono_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

sockaddr_in loopback_addr(const char* ip, uint16_t port) {
  sockaddr_in a;
  std::memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Calls fn(name, value) for each header line of `head` (after the status line).
template <class Fn>
static void for_each_header(std::string_view head, Fn fn) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    size_t start = pos + 2;
    size_t end = head.find("\r\n", start);
    std::string_view line = head.substr(start, end == std::string_view::npos ? head.npos : end - start);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) fn(line.substr(0, colon), trim(line.substr(colon + 1)));
    pos = end;
  }
}

static bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool parse_head(std::string_view head, Head* out) noexcept {
  // "HTTP/1.1 200 OK"
  if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0 || head[8] != ' ') return false;
  int status = 0;
  for (int i = 9; i < 12; i++) {
    if (head[i] < '0' || head[i] > '9') return false;
    status = status * 10 + (head[i] - '0');
  }
  Head h;
  h.status = status;
  for_each_header(head, [&](std::string_view name, std::string_view value) {
    if (iequals(name, "content-length")) {
      h.content_length = std::strtoll(std::string(value).c_str(), nullptr, 10);
    } else if (iequals(name, "transfer-encoding")) {
      h.chunked = value.find("chunked") != std::string_view::npos;
    }
  });
  *out = h;
  return true;
}

std::string header_value(std::string_view head, std::string_view name) {
  std::string found;
  for_each_header(head, [&](std::string_view n, std::string_view v) {
    if (found.empty() && iequals(n, name)) found = std::string(v);
  });
  return found;
}

std::string make_get(std::string_view host, std::string_view target, std::string_view extra_headers) {
  std::string r;
  r.reserve(target.size() + extra_headers.size() + 64);
  r.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
  r.append(extra_headers);
  r.append("\r\n");
  return r;
}

std::string make_post(std::string_view host, std::string_view target, std::string_view extra_headers,
                      std::string_view body) {
  std::string r;
  r.append("POST ").append(target).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
  r.append(extra_headers);
  r.append("Content-Type: application/json\r\nContent-Length: ");
  r.append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  return r;
}

// Waits until fd is ready for `events` or the deadline passes.
static bool wait_fd(int fd, short events, uint64_t deadline_ns) {
  for (;;) {
    uint64_t now = mono_ns();
    if (now >= deadline_ns) return false;
    pollfd p{fd, events, 0};
    int ms = int((deadline_ns - now) / 1000000) + 1;
    int rc = poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// Decodes a complete chunked body from `raw`; returns false if it is not complete yet.
static bool dechunk(std::string_view raw, std::string* out) {
  out->clear();
  size_t pos = 0;
  for (;;) {
    size_t eol = raw.find("\r\n", pos);
    if (eol == raw.npos) return false;
    size_t n = std::strtoul(std::string(raw.substr(pos, eol - pos)).c_str(), nullptr, 16);
    pos = eol + 2;
    if (n == 0) return raw.find("\r\n", pos) != raw.npos;
    if (raw.size() < pos + n + 2) return false;
    out->append(raw.substr(pos, n));
    pos += n + 2;
  }
}

bool http_exchange(const sockaddr_in& dst, const std::string& request, int timeout_ms,
                   Response* out, std::string* err) {
  uint64_t deadline = mono_ns() + uint64_t(timeout_ms) * 1000000ull;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) < 0 && errno != EINPROGRESS) {
    *err = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  if (!wait_fd(fd, POLLOUT, deadline)) {
    *err = "connect timed out";
    return false;
  }
  int soerr = 0;
  socklen_t len = sizeof soerr;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr != 0) {
    *err = std::string("connect: ") + std::strerror(soerr);
    return false;
  }
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += size_t(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_fd(fd, POLLOUT, deadline)) {
        *err = "send timed out";
        return false;
      }
    } else {
      *err = std::string("send: ") + std::strerror(errno);
      return false;
    }
  }
  std::string buf;
  char tmp[65536];
  for (;;) {
    size_t hend = buf.find("\r\n\r\n");
    if (hend != buf.npos) {
      Head h;
      if (!parse_head(std::string_view(buf).substr(0, hend), &h)) {
        *err = "malformed response head";
        return false;
      }
      std::string_view rest = std::string_view(buf).substr(hend + 4);
      bool complete = false;
      std::string body;
      if (h.chunked) {
        complete = dechunk(rest, &body);
      } else if (h.content_length >= 0) {
        complete = rest.size() >= size_t(h.content_length);
        if (complete) body = std::string(rest.substr(0, size_t(h.content_length)));
      } else if (h.status == 204 || h.status == 304) {
        complete = true;
      }
      if (complete) {
        out->status = h.status;
        out->head = buf.substr(0, hend);
        out->body = std::move(body);
        return true;
      }
    }
    if (!wait_fd(fd, POLLIN, deadline)) {
      *err = "no (complete) response before the timeout";
      return false;
    }
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf.append(tmp, size_t(n));
    } else if (n == 0) {
      *err = "connection closed before a complete response";
      return false;
    } else if (errno != EAGAIN && errno != EINTR) {
      *err = std::string("recv: ") + std::strerror(errno);
      return false;
    }
  }
}

}  // namespace bench
