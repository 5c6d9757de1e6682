// Retry delays: first step 0..200 ms, then full jitter 0..min(cap, base*2^(n-1)), reset
// after success, Retry-After as a lower bound (capped), 4xx skipping the first step.
#include "test_support.hpp"

#include "backoff.hpp"

using namespace rt::client;

static void test_sequence_bounds_and_cap(void** state) {
  (void)state;
  BackoffConfig cfg;  // 200 / 250 / 10000
  const Millis bounds[] = {200, 250, 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000};
  for (uint64_t seed = 1; seed <= 200; seed++) {
    Rng rng(seed);
    Backoff b;
    for (Millis bound : bounds) {
      assert_int_equal(b.next_max(cfg, false), bound);
      Millis d = b.next_delay(cfg, rng, -1, false);
      assert_true(d >= 0 && d <= bound);
    }
  }
}

// Full jitter really spreads over the range (not a constant, not always the top).
static void test_jitter_uses_whole_range(void** state) {
  (void)state;
  BackoffConfig cfg;
  Millis lo = 1 << 30, hi = -1;
  for (uint64_t seed = 1; seed <= 500; seed++) {
    Rng rng(seed);
    Backoff b;
    b.set_failures(4);  // 250 * 2^3 = 2000
    Millis d = b.next_delay(cfg, rng, -1, false);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  assert_true(lo < 200);
  assert_true(hi > 1800 && hi <= 2000);
}

static void test_reset_after_success(void** state) {
  (void)state;
  BackoffConfig cfg;
  Rng rng(7);
  Backoff b;
  for (int i = 0; i < 6; i++) b.next_delay(cfg, rng, -1, false);
  assert_int_equal(b.next_max(cfg, false), 8000);
  b.reset();
  assert_int_equal(b.failures(), 0);
  assert_int_equal(b.next_max(cfg, false), 200);
  assert_true(b.next_delay(cfg, rng, -1, false) <= 200);
}

static void test_retry_after_is_a_floor_with_a_cap(void** state) {
  (void)state;
  BackoffConfig cfg;
  cfg.max_retry_after_ms = 60000;
  Rng rng(3);
  Backoff b;
  assert_int_equal(b.next_delay(cfg, rng, 5000, false), 5000);   // 0..200 raised to 5 s
  assert_int_equal(b.next_delay(cfg, rng, 3600000, false), 60000);  // an hour, capped
  Backoff c;
  c.set_failures(10);  // 0..10000: Retry-After 1 s only raises small draws
  for (int i = 0; i < 50; i++) assert_true(c.next_delay(cfg, rng, 1000, false) >= 1000);
}

static void test_skip_first_step_for_4xx(void** state) {
  (void)state;
  BackoffConfig cfg;
  Rng rng(9);
  Backoff b;
  assert_int_equal(b.next_max(cfg, true), 250);
  Millis d = b.next_delay(cfg, rng, -1, true);
  assert_true(d <= 250);
  assert_int_equal(b.failures(), 2);
  assert_int_equal(b.next_max(cfg, true), 500);
}

static void test_configurable_numbers(void** state) {
  (void)state;
  BackoffConfig cfg{50, 100, 300, 1000};
  Backoff b;
  Rng rng(1);
  const Millis bounds[] = {50, 100, 200, 300, 300};
  for (Millis bound : bounds) {
    assert_int_equal(b.next_max(cfg, false), bound);
    assert_true(b.next_delay(cfg, rng, -1, false) <= bound);
  }
}

static void test_parse_retry_after(void** state) {
  (void)state;
  assert_int_equal(parse_retry_after("120"), 120000);
  assert_int_equal(parse_retry_after(" 3 "), 3000);
  assert_int_equal(parse_retry_after("0"), 0);
  assert_int_equal(parse_retry_after(""), -1);
  assert_int_equal(parse_retry_after("-1"), -1);
  assert_int_equal(parse_retry_after("1.5"), -1);
  assert_int_equal(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
  assert_int_equal(parse_retry_after("99999999999999999999999"), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sequence_bounds_and_cap),
      cmocka_unit_test(test_jitter_uses_whole_range),
      cmocka_unit_test(test_reset_after_success),
      cmocka_unit_test(test_retry_after_is_a_floor_with_a_cap),
      cmocka_unit_test(test_skip_first_step_for_4xx),
      cmocka_unit_test(test_configurable_numbers),
      cmocka_unit_test(test_parse_retry_after),
  };
  return cmocka_run_group_tests_name("client backoff", tests, nullptr, nullptr);
}
