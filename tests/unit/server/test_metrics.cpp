// Unit tests of server/src/metrics: the /metrics text (Prometheus format).
#include "cmocka_wrap.hpp"

#include <string>

#include "metrics.hpp"

namespace m = rt::metrics;

static bool has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

static void test_names_and_types(void**) {
  std::string t = m::render();
  for (const char* s :
       {"# TYPE rt_held_polls gauge\n", "# TYPE rt_subscribed_channels gauge\n", "# TYPE rt_requests_total counter\n",
        "# TYPE rt_publishes_total counter\n", "# TYPE rt_deliveries_total counter\n",
        "# TYPE rt_resets_total counter\n", "# TYPE rt_redis_reconnects_total counter\n",
        "# TYPE rt_poll_duration_seconds histogram\n", "# TYPE rt_publish_duration_seconds histogram\n"})
    assert_true(has(t, s));
  assert_true(t.back() == '\n');
}

static void test_counters_and_gauges(void**) {
  auto& r = m::get();
  r.held_polls.fetch_add(3);
  r.held_polls.fetch_sub(1);
  r.publishes.fetch_add(5);
  m::count_request(m::Endpoint::rt, 200);
  m::count_request(m::Endpoint::rt, 200);
  m::count_request(m::Endpoint::publish, 401);
  m::count_request(m::Endpoint::healthz, 418);  // not tracked individually
  std::string t = m::render();
  assert_true(has(t, "\nrt_held_polls 2\n"));
  assert_true(has(t, "\nrt_publishes_total 5\n"));
  assert_true(has(t, "rt_requests_total{endpoint=\"rt\",status=\"200\"} 2\n"));
  assert_true(has(t, "rt_requests_total{endpoint=\"publish\",status=\"401\"} 1\n"));
  assert_true(has(t, "rt_requests_total{endpoint=\"healthz\",status=\"other\"} 1\n"));
  assert_false(has(t, "status=\"404\""));  // zero series are left out
}

static void test_resets_by_reason(void**) {
  auto& r = m::get();
  std::string t = m::render();
  // Both series are always there (an alert on "lost" needs the zero).
  assert_true(has(t, "\nrt_resets_total{reason=\"behind\"} 0\n"));
  assert_true(has(t, "\nrt_resets_total{reason=\"lost\"} 0\n"));
  r.resets_behind.fetch_add(2);
  r.resets_lost.fetch_add(7);
  t = m::render();
  assert_true(has(t, "# TYPE rt_resets_total counter\n"));
  assert_true(has(t, "\nrt_resets_total{reason=\"behind\"} 2\n"));
  assert_true(has(t, "\nrt_resets_total{reason=\"lost\"} 7\n"));
}

static void test_histogram(void**) {
  m::Histogram h;
  h.observe_us(300);        // 0.0003 s -> first bucket
  h.observe_us(1000);       // exactly 0.001 -> le="0.001"
  h.observe_us(70000000);   // 70 s -> only +Inf
  std::string t;
  h.render("x_seconds", "help", &t);
  assert_true(has(t, "x_seconds_bucket{le=\"0.0005\"} 1\n"));
  assert_true(has(t, "x_seconds_bucket{le=\"0.001\"} 2\n"));
  assert_true(has(t, "x_seconds_bucket{le=\"60\"} 2\n"));
  assert_true(has(t, "x_seconds_bucket{le=\"+Inf\"} 3\n"));
  assert_true(has(t, "x_seconds_count 3\n"));
  assert_true(has(t, "x_seconds_sum 70.001300\n"));
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_and_types),
      cmocka_unit_test(test_counters_and_gauges),
      cmocka_unit_test(test_resets_by_reason),
      cmocka_unit_test(test_histogram),
  };
  return cmocka_run_group_tests_name("server/metrics", tests, nullptr, nullptr);
}
