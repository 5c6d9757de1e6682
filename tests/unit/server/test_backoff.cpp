// Unit tests of server/src/backoff.hpp: the Redis reconnect schedule.
#include "cmocka_wrap.hpp"

#include "backoff.hpp"

static void test_schedule(void**) {
  rt::Backoff b;  // 100 ms doubling to 2 s
  const uint64_t expected[] = {100, 200, 400, 800, 1600, 2000, 2000, 2000};
  for (uint64_t e : expected) assert_int_equal(b.next(), e);
  b.reset();
  assert_int_equal(b.next(), 100);
  assert_int_equal(b.next(), 200);
}

static void test_custom(void**) {
  rt::Backoff b(30, 100);
  assert_int_equal(b.next(), 30);
  assert_int_equal(b.next(), 60);
  assert_int_equal(b.next(), 100);
  assert_int_equal(b.next(), 100);
}

int main() {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_schedule), cmocka_unit_test(test_custom)};
  return cmocka_run_group_tests_name("server/backoff", tests, nullptr, nullptr);
}
