#include "publish_token.hpp"

#include <mutex>

namespace rt::publish_token {

namespace {
std::mutex g_mutex;
std::shared_ptr<const std::string>& slot() {
  static std::shared_ptr<const std::string> token = std::make_shared<const std::string>();
  return token;
}
}  // namespace

void set(std::string token) {
  auto fresh = std::make_shared<const std::string>(std::move(token));
  std::lock_guard<std::mutex> lock(g_mutex);
  slot().swap(fresh);  // the old token is freed outside any reader's use (shared_ptr)
}

std::shared_ptr<const std::string> current() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return slot();
}

}  // namespace rt::publish_token

namespace rt {

bool token_matches(std::string_view presented, std::string_view expected) noexcept {
  if (expected.empty()) return false;
  // Every presented byte is compared (against the expected one at the same position, cycling
  // when presented is longer), and the differences are OR-ed: no early exit. volatile keeps
  // the compiler from turning the loop into a memcmp that stops at the first difference.
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); i++)
    diff = diff | static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  return diff == 0;
}

}  // namespace rt
