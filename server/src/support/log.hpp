// Structured one-line logs on stderr:
//   ts=2026-01-01T12:00:00.123Z level=info msg="listening" addr=127.0.0.1:8080
// A line is built in memory and written with one write(2), so lines from several worker
// threads do not interleave. Values with spaces, quotes or '=' are quoted and escaped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rt::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// Parses "debug" | "info" | "warn" | "error". Returns false for anything else.
bool parse_level(std::string_view text, Level* out) noexcept;

// Sets the minimum level that is written (default info). Call before starting threads.
void set_level(Level level) noexcept;
bool enabled(Level level) noexcept;

// One log line; written when destroyed. Use through the RT_LOG macro so that the line is
// not even built when its level is disabled.
class Line {
 public:
  Line(Level level, std::string_view msg);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& kv(std::string_view key, std::string_view value);
  Line& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value ? value : "")); }
  Line& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
  Line& kv(std::string_view key, int64_t value);
  Line& kv(std::string_view key, uint64_t value);
  Line& kv(std::string_view key, int value) { return kv(key, int64_t(value)); }
  Line& kv(std::string_view key, unsigned value) { return kv(key, uint64_t(value)); }
  Line& kv(std::string_view key, long long value) { return kv(key, int64_t(value)); }
  Line& kv(std::string_view key, unsigned long long value) { return kv(key, uint64_t(value)); }
  Line& kv(std::string_view key, double value);

 private:
  std::string text_;
};

// Formats `value` as a logfmt value (quoted when needed). Exposed for tests.
std::string quote(std::string_view value);

}  // namespace rt::log

#define RT_LOG(level, msg)                                                                 \
  for (bool rt_log_once_ = ::rt::log::enabled(::rt::log::Level::level); rt_log_once_; rt_log_once_ = false) \
  ::rt::log::Line(::rt::log::Level::level, msg)
