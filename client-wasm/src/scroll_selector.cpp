#include "scroll_selector.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>
#include <map>

namespace rt::client {

double rect_distance_sq(const Rect& a, const Rect& b) noexcept {
  double dx = std::max({0.0, b.left - a.right, a.left - b.right});
  double dy = std::max({0.0, b.top - a.bottom, a.top - b.bottom});
  double d = dx * dx + dy * dy;
  if (std::isnan(d) || std::isnan(a.top) || std::isnan(a.left) || std::isnan(a.bottom) ||
      std::isnan(a.right))
    return std::numeric_limits<double>::infinity();
  return d;
}

std::vector<std::string> select_closest(const std::vector<ScrollItem>& items,
                                        const Rect& viewport, size_t closest) {
  struct Candidate {
    double dist;
    size_t index;  // document order of the channel's nearest item
  };
  // One candidate per channel: its nearest item (earliest on ties).
  std::map<std::string_view, size_t> slot_of;
  std::vector<Candidate> cands;
  cands.reserve(items.size());
  for (size_t i = 0; i < items.size(); i++) {
    double d = rect_distance_sq(items[i].rect, viewport);
    auto [it, fresh] = slot_of.emplace(items[i].channel, cands.size());
    if (fresh) {
      cands.push_back(Candidate{d, i});
    } else if (d < cands[it->second].dist) {
      cands[it->second] = Candidate{d, i};
    }
  }
  auto nearer = [](const Candidate& x, const Candidate& y) {
    return x.dist != y.dist ? x.dist < y.dist : x.index < y.index;
  };
  size_t k = std::min(closest, cands.size());
  std::partial_sort(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(k), cands.end(), nearer);
  std::vector<std::string> out;
  out.reserve(k);
  for (size_t i = 0; i < k; i++) out.push_back(items[cands[i].index].channel);
  return out;
}

}  // namespace rt::client
