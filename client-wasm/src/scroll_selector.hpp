// Picks the channels an infinite-scroll page listens to once scrolling has settled: the
// `closest` items nearest the viewport. Deterministic: the distance of an item is the
// Euclidean distance between its rectangle and the viewport rectangle (0 when they overlap,
// i.e. the item is at least partly visible); ties go to the item earlier in document order
// (its index in the list). Several items may share a channel: the channel counts once, at
// its nearest item.
#pragma once

#include <string>
#include <vector>

namespace rt::client {

struct Rect {
  double top = 0, left = 0, bottom = 0, right = 0;  // CSS pixels, bottom >= top, right >= left
};

struct ScrollItem {
  std::string channel;
  Rect rect;
  uint64_t last_id = 0;  // what the page already shows (0: unknown)
};

// Squared distance between two rectangles (0 when they overlap or touch). NaN coordinates
// count as infinitely far.
double rect_distance_sq(const Rect& a, const Rect& b) noexcept;

// Returns up to `closest` distinct channels of `items` (given in document order), nearest
// first, ties by document order.
std::vector<std::string> select_closest(const std::vector<ScrollItem>& items,
                                        const Rect& viewport, size_t closest);

}  // namespace rt::client
