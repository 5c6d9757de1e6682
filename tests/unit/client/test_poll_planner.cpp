// Splitting channels over polls under the URL budget: exact fit, one byte over, the
// per-poll channel limit, and every URL built really under budget.
#include "test_support.hpp"

#include "poll_planner.hpp"

using namespace rt::client;
using rt::proto::ChannelPos;

static const UrlShape kShape{"http://127.0.0.1:8080", "/rt"};

static std::vector<ChannelPos> make_channels(size_t n, uint64_t id_base = 0) {
  std::vector<ChannelPos> v;
  for (size_t i = 0; i < n; i++) v.push_back(ChannelPos{"thread." + std::to_string(i), id_base + i * 37});
  return v;
}

static void test_url_format(void** state) {
  (void)state;
  std::vector<ChannelPos> g{{"127", 1}, {"389", 20}};
  std::string url = build_poll_url(kShape, g, 0xabcdef);
  assert_string_equal(url.c_str(), "http://127.0.0.1:8080/rt?c=127&m=1&c=389&m=20&cachebreak=000000abcdef");
  // The cachebreak has a fixed width whatever its value.
  assert_int_equal(build_poll_url(kShape, g, ~uint64_t{0}).size(), url.size());
  assert_int_equal(fixed_url_length(kShape), std::string("http://127.0.0.1:8080/rt?&cachebreak=000000abcdef").size());
}

static void test_exactly_fits_and_one_byte_over(void** state) {
  (void)state;
  auto chans = make_channels(3);
  size_t full = build_poll_url(kShape, chans, 1).size();
  // Exactly the length of one URL with all three: one poll.
  auto g = split_channels(chans, kShape, full, 500);
  assert_int_equal(g.size(), 1);
  assert_int_equal(g[0].size(), 3);
  assert_int_equal(build_poll_url(kShape, g[0], 99).size(), full);
  // One byte less: the last channel moves to a second poll.
  g = split_channels(chans, kShape, full - 1, 500);
  assert_int_equal(g.size(), 2);
  assert_int_equal(g[0].size(), 2);
  assert_int_equal(g[1].size(), 1);
  assert_string_equal(g[1][0].channel.c_str(), "thread.2");
  for (auto& grp : g) assert_true(build_poll_url(kShape, grp, 5).size() <= full - 1);
}

static void test_every_url_under_budget_and_nothing_lost(void** state) {
  (void)state;
  for (size_t budget : {min_url_budget(kShape), size_t{300}, size_t{1000}, size_t{2083}, size_t{4096}}) {
    auto chans = make_channels(700, 123456789);
    auto groups = split_channels(chans, kShape, budget, 500);
    std::vector<ChannelPos> seen;
    for (auto& g : groups) {
      assert_false(g.empty());
      assert_true(build_poll_url(kShape, g, 0).size() <= budget);
      seen.insert(seen.end(), g.begin(), g.end());
    }
    assert_int_equal(seen.size(), chans.size());
    for (size_t i = 0; i < chans.size(); i++) {  // same channels, same order, same ids
      assert_string_equal(seen[i].channel.c_str(), chans[i].channel.c_str());
      assert_int_equal(seen[i].last_id, chans[i].last_id);
    }
  }
}

static void test_channel_limit_per_poll(void** state) {
  (void)state;
  auto chans = make_channels(12);
  auto g = split_channels(chans, kShape, 1000000, 5);
  assert_int_equal(g.size(), 3);
  assert_int_equal(g[0].size(), 5);
  assert_int_equal(g[1].size(), 5);
  assert_int_equal(g[2].size(), 2);
}

static void test_longest_channel_fits_min_budget(void** state) {
  (void)state;
  std::vector<ChannelPos> c{{std::string(128, 'x'), rt::proto::kMaxId}};
  assert_int_equal(build_poll_url(kShape, c, 0).size(), min_url_budget(kShape));
  auto g = split_channels(c, kShape, min_url_budget(kShape), 500);
  assert_int_equal(g.size(), 1);
  assert_true(split_channels({}, kShape, 4096, 500).empty());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_format),
      cmocka_unit_test(test_exactly_fits_and_one_byte_over),
      cmocka_unit_test(test_every_url_under_budget_and_nothing_lost),
      cmocka_unit_test(test_channel_limit_per_poll),
      cmocka_unit_test(test_longest_channel_fits_min_budget),
  };
  return cmocka_run_group_tests_name("client poll_planner", tests, nullptr, nullptr);
}
