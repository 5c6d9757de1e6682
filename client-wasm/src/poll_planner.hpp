// Splits the wanted channels over as few concurrent polls as fit the URL length budget, and
// builds their URLs. A poll URL is
//
//   <base_url><path>?c=A&m=1&c=B&m=7&cachebreak=<12 hex digits>
//
// and every byte of it counts against the budget (IE8-era pages: a few kB). The cachebreak
// has a fixed width so that the split computed here is exactly the URL built later.
#pragma once

#include <string>
#include <vector>

#include "protocol.hpp"

namespace rt::client {

constexpr size_t kCachebreakHexDigits = 12;

struct UrlShape {
  std::string base_url;  // scheme://host[:port], no trailing slash (may be "" for relative)
  std::string path;      // "/rt"
};

// Length of a poll URL with no channel pairs: base + path + "?" + "&cachebreak=" + digits.
size_t fixed_url_length(const UrlShape& shape) noexcept;

// Smallest budget under which any single valid channel (128-byte name, 16-digit id) fits.
size_t min_url_budget(const UrlShape& shape) noexcept;

// Groups `channels` (kept in order) greedily: each group's URL is at most `budget` bytes and
// holds at most `max_per_poll` channels. A channel that cannot fit even alone (only possible
// with a budget under min_url_budget) gets a group of its own. Empty input: no groups.
std::vector<std::vector<proto::ChannelPos>> split_channels(
    const std::vector<proto::ChannelPos>& channels, const UrlShape& shape, size_t budget,
    size_t max_per_poll);

// The URL of one poll for `group` (non-empty) with the low 48 bits of `cachebreak`.
std::string build_poll_url(const UrlShape& shape, const std::vector<proto::ChannelPos>& group,
                           uint64_t cachebreak);

}  // namespace rt::client
