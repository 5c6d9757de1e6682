// Unit tests of server/src/metrics: the /metrics text (Prometheus format).
#include "cmocka_wrap.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

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

// rt_accept_queue: connections the kernel completed on a watched listening socket that
// nobody accepted yet (a real socket on loopback); a socket watched by several workers
// counts once.
static void test_connection_metrics(void**) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  assert_int_equal(listen(l, 16), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::vector<int> clients;
  for (int i = 0; i < 3; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    clients.push_back(c);
  }
  assert_int_equal(m::accept_queue(l), 3);
  assert_int_equal(m::accept_queue(clients[0]), 0);  // not a listening socket
  m::watch_listener(l);
  m::watch_listener(l);
  m::get().connections.store(7);
  m::get().connections_limit.store(19920);
  std::string t = m::render();
  assert_true(has(t, "\nrt_accept_queue 3\n"));
  assert_true(has(t, "\nrt_connections 7\n"));
  assert_true(has(t, "\nrt_connections_limit 19920\n"));
  assert_true(has(t, "# TYPE rt_accept_pauses_total counter\n"));
  assert_true(has(t, "\nrt_connections_shed_total{reason=\"idle\"} 0\n"));
  assert_true(has(t, "\nrt_connections_shed_total{reason=\"slow\"} 0\n"));
  assert_true(has(t, "# TYPE rt_request_timeouts_total counter\n"));
  m::unwatch_listener(l);
  m::unwatch_listener(l);
  assert_true(has(m::render(), "\nrt_accept_queue 0\n"));
  for (int c : clients) close(c);
  close(l);
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
      cmocka_unit_test(test_connection_metrics),
  };
  return cmocka_run_group_tests_name("server/metrics", tests, nullptr, nullptr);
}
