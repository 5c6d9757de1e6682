// Unit tests of server/src/router: the route table (paths, methods, CORS preflights, 405,
// 404, static files).
#include "cmocka_wrap.hpp"

#include <event2/http.h>

#include <cstring>
#include <string>

#include "router.hpp"

using rt::match_route;
using rt::RouteAction;

static void expect(const char* path, int method, bool web, bool cors, RouteAction action, const char* route_path,
                   rt::metrics::Endpoint ep) {
  rt::RouteMatch m = match_route(path, method, web, cors);
  if (m.action != action) fail_msg("%s (method %d, web %d, cors %d): action %d, want %d", path, method, web, cors,
                                   int(m.action), int(action));
  if (action == RouteAction::not_found && route_path == nullptr && !web) {
    assert_null(m.route);
    return;
  }
  assert_non_null(m.route);
  if (route_path == nullptr) assert_null(m.route->path);
  else assert_string_equal(m.route->path, route_path);
  assert_int_equal(int(m.route->endpoint), int(ep));
}

static void test_endpoints_and_methods(void**) {
  using E = rt::metrics::Endpoint;
  expect("/rt", EVHTTP_REQ_GET, false, false, RouteAction::handle, "/rt", E::rt);
  expect("/publish", EVHTTP_REQ_POST, false, false, RouteAction::handle, "/publish", E::publish);
  expect("/healthz", EVHTTP_REQ_GET, false, false, RouteAction::handle, "/healthz", E::healthz);
  expect("/metrics", EVHTTP_REQ_GET, false, false, RouteAction::handle, "/metrics", E::metrics);
  for (int m : {EVHTTP_REQ_POST, EVHTTP_REQ_PUT, EVHTTP_REQ_DELETE, EVHTTP_REQ_PATCH, EVHTTP_REQ_HEAD, EVHTTP_REQ_OPTIONS})
    expect("/rt", m, false, false, RouteAction::method_not_allowed, "/rt", E::rt);
  expect("/publish", EVHTTP_REQ_GET, false, false, RouteAction::method_not_allowed, "/publish", E::publish);
  expect("/healthz", EVHTTP_REQ_HEAD, false, false, RouteAction::method_not_allowed, "/healthz", E::healthz);
  // Exact paths only: no prefix, case or trailing-slash matches.
  for (const char* p : {"/rt/", "/rt/extra", "/RT", "/publishx", "/metricsx", "", "/"})
    expect(p, EVHTTP_REQ_GET, false, false, RouteAction::not_found, nullptr, E::other);
}

static void test_cors_preflight(void**) {
  using E = rt::metrics::Endpoint;
  // OPTIONS is a preflight only on the JSON endpoints and only with --cors-origin.
  expect("/rt", EVHTTP_REQ_OPTIONS, false, true, RouteAction::preflight, "/rt", E::rt);
  expect("/publish", EVHTTP_REQ_OPTIONS, false, true, RouteAction::preflight, "/publish", E::publish);
  expect("/healthz", EVHTTP_REQ_OPTIONS, false, true, RouteAction::preflight, "/healthz", E::healthz);
  expect("/metrics", EVHTTP_REQ_OPTIONS, false, true, RouteAction::method_not_allowed, "/metrics", E::metrics);
  expect("/index.html", EVHTTP_REQ_OPTIONS, true, true, RouteAction::method_not_allowed, nullptr, E::web);
  rt::RouteMatch m = match_route("/publish", EVHTTP_REQ_OPTIONS, false, true);
  assert_string_equal(m.route->preflight_headers, "Authorization, Content-Type");
  assert_true(m.route->cors);
  assert_false(match_route("/metrics", EVHTTP_REQ_GET, false, true).route->cors);
}

static void test_static_files_and_allow(void**) {
  using E = rt::metrics::Endpoint;
  // With --web every other path is a static file (the handler answers 404 for missing ones).
  expect("/", EVHTTP_REQ_GET, true, false, RouteAction::handle, nullptr, E::web);
  expect("/js/rt.mjs", EVHTTP_REQ_GET, true, false, RouteAction::handle, nullptr, E::web);
  expect("/x", EVHTTP_REQ_POST, true, false, RouteAction::method_not_allowed, nullptr, E::web);
  // The named endpoints win over the static files.
  expect("/rt", EVHTTP_REQ_GET, true, false, RouteAction::handle, "/rt", E::rt);
  // Every route names the methods it takes (the Allow header of its 405) and has a handler.
  size_t n = 0;
  const rt::Route* all = rt::routes(&n);
  assert_int_equal(n, 5);
  for (size_t i = 0; i < n; i++) {
    assert_non_null(all[i].handle);
    assert_true(all[i].methods != 0);
    std::string allow;
    if (all[i].methods & EVHTTP_REQ_GET) allow = "GET";
    if (all[i].methods & EVHTTP_REQ_POST) allow += allow.empty() ? "POST" : ", POST";
    assert_string_equal(all[i].allow, allow.c_str());
  }
  assert_null(all[n - 1].path);  // static files last: they take any path
}

int main() {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_endpoints_and_methods), cmocka_unit_test(test_cors_preflight),
                                     cmocka_unit_test(test_static_files_and_allow)};
  return cmocka_run_group_tests_name("server/router", tests, nullptr, nullptr);
}
