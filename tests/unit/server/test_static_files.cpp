// Unit tests of server/src/static_files: path sanitising (no escape from --web) and types.
#include "cmocka_wrap.hpp"

#include <string>

#include "static_files.hpp"

static void expect(const char* url, const char* rel) {
  std::string out;
  if (rel == nullptr) {
    if (rt::sanitize_static_path(url, &out)) fail_msg("accepted %s as %s", url, out.c_str());
  } else {
    if (!rt::sanitize_static_path(url, &out)) fail_msg("refused %s", url);
    assert_string_equal(out.c_str(), rel);
  }
}

static void test_good_paths(void**) {
  expect("/", "index.html");
  expect("/index.html", "index.html");
  expect("/thread/", "thread/index.html");
  expect("/js/rt.mjs", "js/rt.mjs");
  expect("//a///b", "a/b");
  expect("/a%20b.html", "a b.html");
  expect("/x..y", "x..y");
}

static void test_escapes_refused(void**) {
  expect("/../etc/passwd", nullptr);
  expect("/a/../../etc/passwd", nullptr);
  expect("/%2e%2e/etc/passwd", nullptr);
  expect("/%2E%2E%2Fetc", nullptr);
  expect("/a/%2e%2e%2f%2e%2e/x", nullptr);
  expect("/./a", nullptr);
  expect("/.git/config", nullptr);
  expect("/a\\..\\b", nullptr);
  expect("/a%5c..%5cb", nullptr);
  expect("/a%00.html", nullptr);
  expect("/bad%zzenc", nullptr);
  expect("/trunc%2", nullptr);
  expect("relative", nullptr);
  expect("", nullptr);
}

static void test_content_types(void**) {
  assert_string_equal(rt::content_type_for("a/index.html"), "text/html; charset=utf-8");
  assert_string_equal(rt::content_type_for("rt.js"), "text/javascript; charset=utf-8");
  assert_string_equal(rt::content_type_for("rt.mjs"), "text/javascript; charset=utf-8");
  assert_string_equal(rt::content_type_for("rt.wasm"), "application/wasm");
  assert_string_equal(rt::content_type_for("s.css"), "text/css; charset=utf-8");
  assert_string_equal(rt::content_type_for("p.svg"), "image/svg+xml");
  assert_string_equal(rt::content_type_for("d.json"), "application/json");
  assert_string_equal(rt::content_type_for("p.png"), "image/png");
  assert_string_equal(rt::content_type_for("blob"), "application/octet-stream");
}

int main() {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_good_paths), cmocka_unit_test(test_escapes_refused),
                                     cmocka_unit_test(test_content_types)};
  return cmocka_run_group_tests_name("server/static_files", tests, nullptr, nullptr);
}
