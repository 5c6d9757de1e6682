#include "log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace rt::log {

namespace {
std::atomic<int> g_level{int(Level::info)};

const char* level_name(Level l) noexcept {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}
}  // namespace

bool parse_level(std::string_view text, Level* out) noexcept {
  if (text == "debug") *out = Level::debug;
  else if (text == "info") *out = Level::info;
  else if (text == "warn") *out = Level::warn;
  else if (text == "error") *out = Level::error;
  else return false;
  return true;
}

void set_level(Level level) noexcept { g_level.store(int(level), std::memory_order_relaxed); }

bool enabled(Level level) noexcept { return int(level) >= g_level.load(std::memory_order_relaxed); }

std::string quote(std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '"' || c == '=' || c == '\\' || u >= 0x7f) { plain = false; break; }
  }
  if (plain) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') { out += '\\'; out += c; }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (u < ' ' || u == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else out += c;
  }
  out += '"';
  return out;
}

Line::Line(Level level, std::string_view msg) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[128];
  snprintf(buf, sizeof buf, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=", t.tm_year + 1900,
           t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000, level_name(level));
  text_.reserve(160);
  text_ = buf;
  // msg is always quoted so that the format is uniform for readers.
  std::string q = quote(msg);
  if (q.empty() || q[0] != '"') q = "\"" + q + "\"";
  text_ += q;
}

Line::~Line() {
  text_ += '\n';
  // One write per line; a short write of a log line is not worth retrying beyond EINTR.
  const char* p = text_.data();
  size_t left = text_.size();
  while (left > 0) {
    ssize_t n = ::write(2, p, left);
    if (n < 0) break;
    p += n;
    left -= size_t(n);
  }
}

Line& Line::kv(std::string_view key, std::string_view value) {
  text_ += ' ';
  text_.append(key.data(), key.size());
  text_ += '=';
  text_ += quote(value);
  return *this;
}

Line& Line::kv(std::string_view key, int64_t value) { return kv(key, std::string_view(std::to_string(value))); }
Line& Line::kv(std::string_view key, uint64_t value) { return kv(key, std::string_view(std::to_string(value))); }
Line& Line::kv(std::string_view key, double value) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", value);
  return kv(key, std::string_view(buf));
}

}  // namespace rt::log
