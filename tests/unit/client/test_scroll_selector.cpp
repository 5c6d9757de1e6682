// The closest items to the viewport: distance between rectangles, ties by document order,
// fewer items than asked, repeated channels.
#include "test_support.hpp"

#include <cmath>
#include <limits>

#include "scroll_selector.hpp"

using namespace rt::client;

// A vertical list: item i spans [i*100, i*100+90) in page coordinates shifted by -scroll.
static std::vector<ScrollItem> column(size_t n, double scroll) {
  std::vector<ScrollItem> v;
  for (size_t i = 0; i < n; i++)
    v.push_back(ScrollItem{"item." + std::to_string(i), Rect{i * 100.0 - scroll, 0, i * 100.0 + 90 - scroll, 300}, 0});
  return v;
}

static void test_distance(void** state) {
  (void)state;
  Rect vp{0, 0, 800, 1000};
  assert_true(rect_distance_sq(Rect{100, 10, 200, 20}, vp) == 0);       // inside
  assert_true(rect_distance_sq(Rect{-50, 10, 10, 20}, vp) == 0);        // partly visible
  assert_true(rect_distance_sq(Rect{900, 10, 950, 20}, vp) == 100.0 * 100);   // below
  assert_true(rect_distance_sq(Rect{-300, 10, -100, 20}, vp) == 100.0 * 100); // above
  assert_true(rect_distance_sq(Rect{830, 1040, 900, 1100}, vp) == 30.0 * 30 + 40.0 * 40);  // diagonal
  double nan = std::numeric_limits<double>::quiet_NaN();
  assert_true(std::isinf(rect_distance_sq(Rect{nan, 0, 1, 1}, vp)));
}

static void test_closest_40_of_many(void** state) {
  (void)state;
  // Viewport shows items 50..57 (scrolled to 5000, 800 px tall).
  auto items = column(200, 5000);
  auto picked = select_closest(items, Rect{0, 0, 800, 1000}, 40);
  assert_int_equal(picked.size(), 40);
  // Visible ones first, in document order, then alternating outward; the 40 are 30..69
  // minus the farthest: exactly the contiguous band around the viewport.
  assert_string_equal(picked[0].c_str(), "item.50");
  std::vector<int> nums;
  for (auto& p : picked) nums.push_back(std::stoi(p.substr(5)));
  std::sort(nums.begin(), nums.end());
  for (size_t i = 1; i < nums.size(); i++) assert_int_equal(nums[i], nums[i - 1] + 1);  // contiguous
  assert_true(nums.front() >= 30 && nums.back() <= 75);
  assert_true(std::find(nums.begin(), nums.end(), 50) != nums.end());
  assert_true(std::find(nums.begin(), nums.end(), 57) != nums.end());
}

static void test_ties_by_document_order(void** state) {
  (void)state;
  Rect vp{0, 0, 100, 100};
  std::vector<ScrollItem> items{
      {"below", Rect{150, 0, 160, 10}, 0},   // 50 below
      {"above", Rect{-60, 0, -50, 10}, 0},   // 50 above: same distance, later
      {"visible2", Rect{10, 0, 20, 10}, 0},
      {"visible1", Rect{50, 0, 60, 10}, 0},
  };
  auto picked = select_closest(items, vp, 3);
  assert_true((picked == std::vector<std::string>{"visible2", "visible1", "below"}));
  // Same positions, other document order: the other one wins the tie.
  std::swap(items[0], items[1]);
  picked = select_closest(items, vp, 3);
  assert_string_equal(picked[2].c_str(), "above");
}

static void test_fewer_items_than_closest(void** state) {
  (void)state;
  auto items = column(7, 0);
  auto picked = select_closest(items, Rect{0, 0, 200, 300}, 40);
  assert_int_equal(picked.size(), 7);
  assert_true(select_closest({}, Rect{0, 0, 1, 1}, 40).empty());
}

static void test_repeated_channel_counts_once_at_nearest(void** state) {
  (void)state;
  Rect vp{0, 0, 100, 100};
  std::vector<ScrollItem> items{
      {"x", Rect{1000, 0, 1010, 10}, 0},  // far copy
      {"y", Rect{200, 0, 210, 10}, 0},
      {"x", Rect{10, 0, 20, 10}, 0},      // visible copy
      {"z", Rect{300, 0, 310, 10}, 0},
  };
  auto picked = select_closest(items, vp, 2);
  assert_true((picked == std::vector<std::string>{"x", "y"}));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_distance),
      cmocka_unit_test(test_closest_40_of_many),
      cmocka_unit_test(test_ties_by_document_order),
      cmocka_unit_test(test_fewer_items_than_closest),
      cmocka_unit_test(test_repeated_channel_counts_once_at_nearest),
  };
  return cmocka_run_group_tests_name("client scroll_selector", tests, nullptr, nullptr);
}
