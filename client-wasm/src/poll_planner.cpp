#include "poll_planner.hpp"

namespace rt::client {

namespace {
constexpr char kCachebreakKey[] = "&cachebreak=";
constexpr size_t kCachebreakKeyLen = sizeof(kCachebreakKey) - 1;
}  // namespace

size_t fixed_url_length(const UrlShape& shape) noexcept {
  return shape.base_url.size() + shape.path.size() + 1 + kCachebreakKeyLen + kCachebreakHexDigits;
}

size_t min_url_budget(const UrlShape& shape) noexcept {
  // "c=" + 128-byte name + "&m=" + 16 digits
  return fixed_url_length(shape) + 2 + proto::kMaxChannelName + 3 + 16;
}

std::vector<std::vector<proto::ChannelPos>> split_channels(
    const std::vector<proto::ChannelPos>& channels, const UrlShape& shape, size_t budget,
    size_t max_per_poll) {
  std::vector<std::vector<proto::ChannelPos>> groups;
  if (max_per_poll == 0) max_per_poll = 1;
  const size_t fixed = fixed_url_length(shape);
  size_t used = 0;  // URL length of the current (last) group
  for (const proto::ChannelPos& pos : channels) {
    bool open = !groups.empty() && groups.back().size() < max_per_poll;
    if (open && used + proto::query_pair_length(pos, false) <= budget) {
      used += proto::query_pair_length(pos, false);
      groups.back().push_back(pos);
      continue;
    }
    groups.emplace_back();
    groups.back().push_back(pos);
    used = fixed + proto::query_pair_length(pos, true);
  }
  return groups;
}

std::string build_poll_url(const UrlShape& shape, const std::vector<proto::ChannelPos>& group,
                           uint64_t cachebreak) {
  std::string url;
  url.reserve(fixed_url_length(shape) + group.size() * 24);
  url.append(shape.base_url).append(shape.path).push_back('?');
  bool first = true;
  for (const proto::ChannelPos& pos : group) {
    proto::append_query_pair(&url, pos, first);
    first = false;
  }
  url.append(kCachebreakKey, kCachebreakKeyLen);
  static const char hex[] = "0123456789abcdef";
  for (size_t i = kCachebreakHexDigits; i-- > 0;) url.push_back(hex[(cachebreak >> (4 * i)) & 0xf]);
  return url;
}

}  // namespace rt::client
