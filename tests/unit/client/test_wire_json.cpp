// JSON between the core and the JS host: actions out (valid JSON, payloads spliced, strings
// escaped), options and scroll measurements in (errors named, never a crash).
#include "test_support.hpp"

#include <jansson.h>

#include "wire_json.hpp"

using namespace rt::client;
using namespace rt::client::test;

static json_t* parse(const std::string& s) {
  json_error_t err;
  json_t* j = json_loadb(s.data(), s.size(), 0, &err);
  if (!j) fail_msg("invalid JSON (%s): %s", err.text, s.c_str());
  return j;
}

static void test_actions_round_trip(void** state) {
  (void)state;
  Actions acts(7);
  acts[0].kind = ActionKind::start_poll;
  acts[0].poll_id = 12;
  acts[0].url = "http://h/rt?c=a&m=1&cachebreak=0";
  acts[1].kind = ActionKind::abort_poll;
  acts[1].poll_id = 11;
  acts[2].kind = ActionKind::arm_timer;
  acts[2].delay_ms = -1;
  acts[3].kind = ActionKind::status;
  acts[3].status = Status{ConnState::retrying, 2, 731, 503, "HTTP 503: \"quoted\"\n\xff"};
  acts[4].kind = ActionKind::message;
  acts[4].channel = "a";
  acts[4].id = 9007199254740991ULL;
  acts[4].payload_json = "{\"x\":[1,\"\\u00e9\"]}";
  acts[4].targets = 3;
  acts[5].kind = ActionKind::reset;
  acts[5].channel = "b";
  acts[5].id = 70;
  acts[5].has_newest = true;
  acts[5].newest_id = 70;
  acts[5].payload_json = "null";
  acts[5].targets = 1;
  acts[6].kind = ActionKind::measure_scroll;
  json_t* j = parse(actions_to_json(acts));
  assert_int_equal(json_array_size(j), 7);
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "k")), "start");
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "url")), acts[0].url.c_str());
  assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 2), "ms")), -1);
  json_t* st = json_array_get(j, 3);
  assert_string_equal(json_string_value(json_object_get(st, "state")), "retrying");
  assert_int_equal(json_integer_value(json_object_get(st, "retryInMs")), 731);
  assert_string_equal(json_string_value(json_object_get(st, "reason")), "HTTP 503: \"quoted\"\n\xef\xbf\xbd");
  json_t* m = json_array_get(j, 4);
  assert_int_equal(json_integer_value(json_object_get(m, "id")), 9007199254740991LL);
  assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(m, "p"), "x"), 1)), "\xc3\xa9");
  json_t* r = json_array_get(j, 5);
  assert_true(json_is_null(json_object_get(json_object_get(r, "newest"), "payload")));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "newest"), "id")), 70);
  json_decref(j);
  acts[5].has_newest = false;
  j = parse(actions_to_json(acts));
  assert_true(json_is_null(json_object_get(json_array_get(j, 5), "newest")));
  json_decref(j);
  assert_string_equal(actions_to_json({}).c_str(), "[]");
}

static void test_core_output_is_valid_json(void** state) {
  (void)state;
  // Whatever the core emits for real responses parses, with payloads intact.
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  Actions out;
  h.core.on_response(0, h.only_poll(), 200,
                     "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":{\"s\":\"\\\"<\\u2028>\\\\\",\"n\":1.5e300}}]}}",
                     -1, &out);
  json_t* j = parse(actions_to_json(out));
  bool found = false;
  for (size_t i = 0; i < json_array_size(j); i++) {
    json_t* a = json_array_get(j, i);
    if (std::string(json_string_value(json_object_get(a, "k"))) != "msg") continue;
    found = true;
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "p"), "s")), "\"<\xe2\x80\xa8>\\");
  }
  assert_true(found);
  json_decref(j);
}

static void test_config_from_json(void** state) {
  (void)state;
  Config c;
  std::string d;
  assert_true(config_from_json("{\"baseUrl\":\"http://h:1\",\"urlBudget\":2048,\"pollTimeoutMs\":1000,"
                               "\"deadlineMarginMs\":50,\"firstRetryMaxMs\":10,\"backoffBaseMs\":20,"
                               "\"backoffCapMs\":40,\"maxRetryAfterMs\":99,\"settleMs\":5,\"closest\":3,"
                               "\"seed\":9007199254740991,\"maxChannelsPerPoll\":7,\"path\":\"/x\"}",
                               &c, &d));
  assert_string_equal(c.url.base_url.c_str(), "http://h:1");
  assert_string_equal(c.url.path.c_str(), "/x");
  assert_int_equal(c.url_budget, 2048);
  assert_int_equal(c.poll_timeout_ms, 1000);
  assert_int_equal(c.deadline_margin_ms, 50);
  assert_int_equal(c.backoff.first_retry_max_ms, 10);
  assert_int_equal(c.backoff.base_ms, 20);
  assert_int_equal(c.backoff.cap_ms, 40);
  assert_int_equal(c.backoff.max_retry_after_ms, 99);
  assert_int_equal(c.settle_ms, 5);
  assert_int_equal(c.closest, 3);
  assert_int_equal(c.max_channels_per_poll, 7);
  assert_true(c.seed == 9007199254740991ULL);
  assert_true(config_from_json("{\"urlBudget\":4096.0}", &c, &d));  // JS numbers
  assert_false(config_from_json("{\"urlBudget\":1.5}", &c, &d));
  assert_true(contains(d, "urlBudget"));
  assert_false(config_from_json("{\"urlBudgte\":1}", &c, &d));
  assert_true(contains(d, "unknown option urlBudgte"));
  assert_false(config_from_json("{\"baseUrl\":1}", &c, &d));
  assert_false(config_from_json("[]", &c, &d));
  assert_false(config_from_json("{", &c, &d));
  assert_false(config_from_json("{\"seed\":-1}", &c, &d));
}

static void test_scroll_from_json(void** state) {
  (void)state;
  std::vector<ScrollItem> items;
  Rect vp;
  std::string d;
  assert_true(scroll_from_json("{\"viewport\":[0,0,800,1000],\"items\":[[\"a\",1,2,3,4,5],[\"b\"],[\"c\",7],[\"d\",-1.5,0,2,3]]}",
                               &items, &vp, &d));
  assert_true(vp.bottom == 800 && vp.right == 1000);
  assert_int_equal(items.size(), 4);
  assert_true(items[0].rect.top == 1 && items[0].rect.right == 4 && items[0].last_id == 5);
  assert_int_equal(items[2].last_id, 7);
  assert_true(items[3].rect.top == -1.5);
  const char* bad[] = {"", "[]", "{\"items\":1}", "{\"items\":[[1]]}", "{\"items\":[[\"a\",1,2]]}",
                       "{\"items\":[[\"a\",\"x\",0,0,0]]}", "{\"items\":[[\"a\",-1]]}", "{\"viewport\":[1],\"items\":[]}"};
  for (const char* b : bad) {
    assert_false(scroll_from_json(b, &items, &vp, &d));
    assert_true(items.empty());
    assert_false(d.empty());
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_actions_round_trip),
      cmocka_unit_test(test_core_output_is_valid_json),
      cmocka_unit_test(test_config_from_json),
      cmocka_unit_test(test_scroll_from_json),
  };
  return cmocka_run_group_tests_name("client wire_json", tests, nullptr, nullptr);
}
