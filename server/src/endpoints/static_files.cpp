#include "static_files.hpp"
#include "protocol/protocol.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "http_reply.hpp"
#include "metrics.hpp"

namespace rt {

namespace {
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
}  // namespace

bool sanitize_static_path(std::string_view url_path, std::string* rel) {
  if (url_path.empty() || url_path[0] != '/' || url_path.size() > 4096) return false;
  std::string decoded;
  if (!proto::percent_decode(url_path, false, &decoded)) return false;
  for (char c : decoded)
    if (c == '\0' || c == '\\') return false;
  std::string out;
  size_t pos = 0;
  bool trailing_slash = decoded.back() == '/';
  while (pos < decoded.size()) {
    size_t next = decoded.find('/', pos);
    if (next == std::string::npos) next = decoded.size();
    std::string_view seg(decoded.data() + pos, next - pos);
    pos = next + 1;
    if (seg.empty()) continue;
    if (seg[0] == '.') return false;  // "..", "." and hidden files
    if (!out.empty()) out += '/';
    out.append(seg.data(), seg.size());
  }
  if (out.empty() || trailing_slash) out += out.empty() ? "index.html" : "/index.html";
  *rel = out;
  return true;
}

const char* content_type_for(std::string_view f) noexcept {
  if (ends_with(f, ".html") || ends_with(f, ".htm")) return "text/html; charset=utf-8";
  if (ends_with(f, ".js") || ends_with(f, ".mjs")) return "text/javascript; charset=utf-8";
  if (ends_with(f, ".wasm")) return "application/wasm";
  if (ends_with(f, ".css")) return "text/css; charset=utf-8";
  if (ends_with(f, ".svg")) return "image/svg+xml";
  if (ends_with(f, ".json") || ends_with(f, ".map")) return "application/json";
  if (ends_with(f, ".png")) return "image/png";
  if (ends_with(f, ".jpg") || ends_with(f, ".jpeg")) return "image/jpeg";
  if (ends_with(f, ".gif")) return "image/gif";
  if (ends_with(f, ".ico")) return "image/x-icon";
  if (ends_with(f, ".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

void serve_static(const std::string& root, http::Request* req, std::string_view url_path) noexcept {
  static const ReplyOptions no_cors;
  constexpr off_t kMaxFile = 64 << 20;
  std::string rel;
  if (!sanitize_static_path(url_path, &rel)) {
    send_error(req, 404, "not found", metrics::Endpoint::web, no_cors);
    return;
  }
  std::string path = root + "/" + rel;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    path += "/index.html";
    rel += "/index.html";
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    send_error(req, 404, "not found", metrics::Endpoint::web, no_cors);
    return;
  }
  std::string data;
  bool ok = st.st_size <= kMaxFile;
  try {
    if (ok) data.resize(size_t(st.st_size));
  } catch (...) {
    ok = false;
  }
  size_t got = 0;
  while (ok && got < data.size()) {
    ssize_t n = read(fd, &data[got], data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    got += size_t(n);
  }
  close(fd);
  if (!ok) {
    send_error(req, 500, "cannot read file", metrics::Endpoint::web, no_cors);
    return;
  }
  send_text(req, 200, data, content_type_for(rel), metrics::Endpoint::web, "no-cache",
            {{"X-Content-Type-Options", "nosniff"}});
}

}  // namespace rt
