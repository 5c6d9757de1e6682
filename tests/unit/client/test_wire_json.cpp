// The boundary between the core and the JS host: actions out (valid JSON, payload handles,
// strings escaped), options and scroll measurements in as values (errors named).
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
  acts[4].payload_ref = 41;
  acts[4].targets = 3;
  acts[5].kind = ActionKind::reset;
  acts[5].channel = "b";
  acts[5].id = 70;
  acts[5].has_newest = true;
  acts[5].newest_id = 70;
  acts[5].payload_ref = 0;
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
  assert_int_equal(json_integer_value(json_object_get(m, "p")), 41);
  json_t* r = json_array_get(j, 5);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "newest"), "payload")), 0);
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
  // Whatever the core emits for real responses parses; a payload crosses as its handle (here
  // parse_response's: the message's index).
  SimHost h(test_config());
  h.subscribe("a");
  h.settle();
  Actions out;
  on_http_response(h.core, 0, h.only_poll(), 200,
                   "{\"a\":{\"status\":\"ok\",\"msg\":[{\"id\":1,\"payload\":0},{\"id\":2,\"payload\":{\"s\":\"\\\"<\\u2028>\\\\\"}}]}}",
                   -1, &out);
  json_t* j = parse(actions_to_json(out));
  bool found = false;
  for (size_t i = 0; i < json_array_size(j); i++) {
    json_t* a = json_array_get(j, i);
    if (std::string(json_string_value(json_object_get(a, "k"))) != "msg") continue;
    if (json_integer_value(json_object_get(a, "id")) != 2) continue;
    found = true;
    assert_int_equal(json_integer_value(json_object_get(a, "p")), 1);
  }
  assert_true(found);
  json_decref(j);
}

static rt::proto::Value num(double d) {
  rt::proto::Value v;
  v.kind = rt::proto::Value::Kind::number;
  v.number = d;
  return v;
}
static rt::proto::Value text(const char* t) {
  rt::proto::Value v;
  v.kind = rt::proto::Value::Kind::string;
  v.text = t;
  return v;
}

static void test_set_option(void** state) {
  (void)state;
  Config c;
  std::string d;
  assert_true(set_option(&c, "baseUrl", text("http://h:1"), &d));
  assert_true(set_option(&c, "path", text("/x"), &d));
  const char* ms[] = {"pollTimeoutMs", "deadlineMarginMs", "firstRetryMaxMs", "backoffBaseMs", "backoffCapMs",
                      "maxRetryAfterMs", "settleMs", "probeAfterMs"};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) assert_true(set_option(&c, ms[i], num(10 + double(i)), &d));
  assert_true(set_option(&c, "urlBudget", num(2048), &d));
  assert_true(set_option(&c, "closest", num(3), &d));
  assert_true(set_option(&c, "maxChannelsPerPoll", num(7), &d));
  assert_true(set_option(&c, "seed", num(9007199254740991.0), &d));
  assert_string_equal(c.url.base_url.c_str(), "http://h:1");
  assert_string_equal(c.url.path.c_str(), "/x");
  assert_int_equal(c.url_budget, 2048);
  assert_int_equal(c.poll_timeout_ms, 10);
  assert_int_equal(c.deadline_margin_ms, 11);
  assert_int_equal(c.backoff.first_retry_max_ms, 12);
  assert_int_equal(c.backoff.base_ms, 13);
  assert_int_equal(c.backoff.cap_ms, 14);
  assert_int_equal(c.backoff.max_retry_after_ms, 15);
  assert_int_equal(c.settle_ms, 16);
  assert_int_equal(c.probe_after_ms, 17);
  assert_int_equal(c.closest, 3);
  assert_int_equal(c.max_channels_per_poll, 7);
  assert_true(c.seed == 9007199254740991ULL);
  assert_false(set_option(&c, "urlBudget", num(1.5), &d));
  assert_true(contains(d, "urlBudget"));
  assert_false(set_option(&c, "urlBudgte", num(1), &d));
  assert_true(contains(d, "unknown option urlBudgte"));
  assert_false(set_option(&c, "baseUrl", num(1), &d));
  assert_false(set_option(&c, "urlBudget", text("1"), &d));
  assert_false(set_option(&c, "urlBudget", rt::proto::Value{}, &d));
  assert_false(set_option(&c, "settleMs", num(1.0 / 0.0), &d));
  assert_false(set_option(&c, "seed", num(-1), &d));
}

static void test_scroll_values(void** state) {
  (void)state;
  ScrollItem it;
  Rect vp;
  std::string d;
  const double r[4] = {1, 2, 3, 4};
  assert_true(scroll_item(0, "a", r, 5, &it, &d));
  assert_true(it.channel == "a" && it.rect.top == 1 && it.rect.right == 4 && it.last_id == 5);
  const double vr[4] = {0, 0, 800, 1000};
  assert_true(scroll_viewport(vr, &vp, &d));
  assert_true(vp.bottom == 800 && vp.right == 1000);
  const double inf[4] = {0, 1.0 / 0.0, 0, 0};
  assert_false(scroll_item(3, "a", inf, 0, &it, &d));
  assert_true(contains(d, "item 3 has a non-numeric coordinate"));
  assert_false(scroll_item(0, "a", r, -1, &it, &d));
  assert_true(contains(d, "invalid lastId"));
  assert_false(scroll_item(0, "a", r, 0.5, &it, &d));
  assert_false(scroll_viewport(inf, &vp, &d));
  assert_true(contains(d, "viewport"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_actions_round_trip),
      cmocka_unit_test(test_core_output_is_valid_json),
      cmocka_unit_test(test_set_option),
      cmocka_unit_test(test_scroll_values),
  };
  return cmocka_run_group_tests_name("client wire_json", tests, nullptr, nullptr);
}
