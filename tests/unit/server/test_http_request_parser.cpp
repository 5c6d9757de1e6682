// Unit tests of server/src/http_request_parser: request heads (keep-alive rules, lengths,
// chunked, Expect, limits with their statuses) and chunked body decoding, fed whole and in
// pieces.
#include "cmocka_wrap.hpp"

#include <string>

#include "http_request_parser.hpp"

using rt::http::ChunkedDecoder;
using rt::http::HeadScan;
using rt::http::HeadStatus;
using rt::http::Method;
using rt::http::ParseError;
using rt::http::ParseLimits;
using rt::http::RequestHead;

static std::string sv(std::string_view v) { return std::string(v); }

// Parses `text` in one piece.
static HeadStatus parse(std::string_view text, RequestHead* h, ParseError* e, const ParseLimits& lim = ParseLimits()) {
  HeadScan scan;
  return rt::http::parse_request_head(text, lim, &scan, h, e);
}

static void expect_error(const std::string& text, int status, const ParseLimits& lim = ParseLimits()) {
  RequestHead h;
  ParseError e;
  HeadStatus st = parse(text, &h, &e, lim);
  if (st != HeadStatus::error) fail_msg("accepted %.80s", text.c_str());
  if (e.status != status) fail_msg("%.80s: status %d, expected %d (%s)", text.c_str(), e.status, status, e.message);
  assert_true(strlen(e.message) > 0);
}

static void test_simple_get(void**) {
  RequestHead h;
  ParseError e;
  std::string req = "GET /rt?c=a&m=1 HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
  assert_int_equal(int(parse(req, &h, &e)), int(HeadStatus::complete));
  assert_int_equal(int(h.method), int(Method::get));
  assert_string_equal(sv(h.method_name).c_str(), "GET");
  assert_string_equal(sv(h.target).c_str(), "/rt?c=a&m=1");
  assert_string_equal(sv(h.path).c_str(), "/rt");
  assert_string_equal(sv(h.query).c_str(), "c=a&m=1");
  assert_true(h.has_query);
  assert_int_equal(h.minor, 1);
  assert_true(h.keep_alive);
  assert_false(h.has_body());
  assert_int_equal(h.head_len, req.size() - 4);
  assert_int_equal(h.header_count, 1);
  std::string_view v;
  assert_true(rt::http::find_header(h.headers, "host", &v));
  assert_string_equal(sv(v).c_str(), "x");
  assert_false(rt::http::find_header(h.headers, "hos", &v));
}

static void test_bare_lf_and_leading_blank_lines(void**) {
  RequestHead h;
  ParseError e;
  std::string req = "\r\n\nPOST /publish?c=a HTTP/1.0\nContent-Length: 2\nConnection: Keep-Alive\n\n{}";
  assert_int_equal(int(parse(req, &h, &e)), int(HeadStatus::complete));
  assert_int_equal(int(h.method), int(Method::post));
  assert_int_equal(h.minor, 0);
  assert_true(h.keep_alive);
  assert_true(h.has_length);
  assert_int_equal(h.content_length, 2);
  assert_int_equal(h.head_len, req.size() - 2);
}

static void test_keep_alive_rules(void**) {
  struct { const char* req; bool keep; } cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (auto& c : cases) {
    RequestHead h;
    ParseError e;
    assert_int_equal(int(parse(c.req, &h, &e)), int(HeadStatus::complete));
    if (h.keep_alive != c.keep) fail_msg("%s: keep_alive %d", c.req, h.keep_alive);
  }
}

static void test_methods_and_targets(void**) {
  struct { const char* req; Method m; const char* path; const char* query; } cases[] = {
      {"HEAD /healthz HTTP/1.1\r\n\r\n", Method::head, "/healthz", ""},
      {"OPTIONS * HTTP/1.1\r\n\r\n", Method::options, "*", ""},
      {"DELETE /rt HTTP/1.1\r\n\r\n", Method::del, "/rt", ""},
      {"BREW /pot HTTP/1.1\r\n\r\n", Method::other, "/pot", ""},
      {"GET http://example.com/rt?c=a HTTP/1.1\r\n\r\n", Method::get, "/rt", "c=a"},
      {"GET http://example.com HTTP/1.1\r\n\r\n", Method::get, "/", ""},
      {"GET http://example.com?x=1 HTTP/1.1\r\n\r\n", Method::get, "/", "x=1"},
      {"GET /a#frag HTTP/1.1\r\n\r\n", Method::get, "/a", ""},
  };
  for (auto& c : cases) {
    RequestHead h;
    ParseError e;
    if (parse(c.req, &h, &e) != HeadStatus::complete) fail_msg("%s: %d %s", c.req, e.status, e.message);
    assert_int_equal(int(h.method), int(c.m));
    assert_string_equal(sv(h.path).c_str(), c.path);
    assert_string_equal(sv(h.query).c_str(), c.query);
  }
}

static void test_malformed_is_400(void**) {
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET /\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      "GET / http/1.1\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET rt HTTP/1.1\r\n\r\n",
      "GET ftp://x/ HTTP/1.1\r\n\r\n",
      "GET /a\x01 HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
      "GET / HTTP/1.1\r\nNo Colon\r\n\r\n",
      "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.1\r\nName : space before colon\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (const char* b : bad) expect_error(b, 400);
  expect_error(std::string("\x00\x01\x02\xff\r\n\r\n", 8), 400);
}

static void test_versions(void**) {
  expect_error("GET / HTTP/9.9\r\n\r\n", 505);
  expect_error("GET / HTTP/2.0\r\n\r\n", 505);
  expect_error("GET / HTTP/1.2\r\n\r\n", 505);
}

static void test_lengths_and_encodings(void**) {
  RequestHead h;
  ParseError e;
  assert_int_equal(int(parse("POST /p HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n", &h, &e)),
                   int(HeadStatus::complete));
  assert_true(h.chunked);
  assert_true(h.expect_continue);
  assert_true(h.has_body());
  assert_int_equal(int(parse("POST /p HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n", &h, &e)),
                   int(HeadStatus::complete));
  assert_int_equal(h.content_length, 7);
  expect_error("POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
  expect_error("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
  ParseLimits lim;
  lim.max_body = 100;
  assert_int_equal(int(parse("POST /p HTTP/1.1\r\nContent-Length: 100\r\n\r\n", &h, &e, lim)), int(HeadStatus::complete));
  expect_error("POST /p HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413, lim);
  expect_error("POST /p HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", 413);
}

static void test_limits(void**) {
  ParseLimits lim;
  lim.max_url = 100;
  lim.max_head = 1000;
  lim.max_headers = 3;
  RequestHead h;
  ParseError e;
  // A long target inside a complete head is the router's 414, not a parse error.
  std::string long_target = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n";
  assert_int_equal(int(parse(long_target, &h, &e, lim)), int(HeadStatus::complete));
  assert_int_equal(h.target.size(), 201);
  // A request line still growing past the URL limit: 414 before it ends.
  HeadScan scan;
  std::string growing = "GET /" + std::string(140, 'a');
  assert_int_equal(int(rt::http::parse_request_head(growing, lim, &scan, &h, &e)), int(HeadStatus::error));
  assert_int_equal(e.status, 414);
  // Under it: wait for more.
  HeadScan scan2;
  assert_int_equal(int(rt::http::parse_request_head("GET /" + std::string(90, 'a'), lim, &scan2, &h, &e)),
                   int(HeadStatus::incomplete));
  // Headers beyond max_head: 431, complete or not.
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(1200, 'h');
  expect_error(big, 431, lim);
  expect_error(big + "\r\n\r\n", 431, lim);
  // Too many header lines.
  expect_error("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431, lim);
  assert_int_equal(int(parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &h, &e, lim)), int(HeadStatus::complete));
}

// The same head fed one byte at a time gives the same result as in one piece.
static void test_incremental(void**) {
  std::string req = "GET /rt?c=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  HeadScan scan;
  RequestHead h;
  ParseError e;
  for (size_t n = 0; n < req.size(); n++) {
    HeadStatus st = rt::http::parse_request_head(std::string_view(req.data(), n), ParseLimits(), &scan, &h, &e);
    if (st != HeadStatus::incomplete) fail_msg("prefix of %zu bytes gave %d", n, int(st));
  }
  assert_int_equal(int(rt::http::parse_request_head(req, ParseLimits(), &scan, &h, &e)), int(HeadStatus::complete));
  assert_false(h.keep_alive);
  assert_int_equal(h.head_len, req.size());
  assert_string_equal(sv(h.query).c_str(), "c=a");
}

static void test_rebase(void**) {
  std::string req = "GET /rt?c=a HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n";
  RequestHead h;
  ParseError e;
  assert_int_equal(int(parse(req, &h, &e)), int(HeadStatus::complete));
  std::string copy = req;
  h.rebase(req.data(), copy.data());
  req.assign(req.size(), '#');
  assert_string_equal(sv(h.path).c_str(), "/rt");
  assert_string_equal(sv(h.query).c_str(), "c=a");
  std::string_view v;
  assert_true(rt::http::find_header(h.headers, "authorization", &v));
  assert_string_equal(sv(v).c_str(), "Bearer t");
}

// Decodes `wire` fed in pieces of `step` bytes.
static ChunkedDecoder::Status decode(const std::string& wire, size_t step, uint64_t max, std::string* body,
                                     size_t* consumed, ParseError* e) {
  ChunkedDecoder d;
  size_t pos = 0;
  ChunkedDecoder::Status st = ChunkedDecoder::Status::need_more;
  while (pos < wire.size()) {
    size_t n = wire.size() - pos < step ? wire.size() - pos : step;
    size_t used = 0;
    st = d.feed(std::string_view(wire.data() + pos, n), max, body, &used, e);
    pos += used;
    if (st != ChunkedDecoder::Status::need_more) break;
    assert_int_equal(used, n);
  }
  *consumed = pos;
  return st;
}

static void test_chunked(void**) {
  std::string wire = "a\r\n0123456789\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nGET /next";
  for (size_t step : {size_t(1), size_t(2), size_t(7), wire.size()}) {
    std::string body;
    size_t used = 0;
    ParseError e;
    assert_int_equal(int(decode(wire, step, 1000, &body, &used, &e)), int(ChunkedDecoder::Status::done));
    assert_string_equal(body.c_str(), "0123456789abc");
    assert_int_equal(used, wire.size() - 9);
  }
  // Bare LF line ends and upper-case hex.
  std::string body;
  size_t used = 0;
  ParseError e;
  assert_int_equal(int(decode("A\n0123456789\n0\n\n", 3, 1000, &body, &used, &e)), int(ChunkedDecoder::Status::done));
  assert_string_equal(body.c_str(), "0123456789");
}

static void test_chunked_errors(void**) {
  struct { const char* wire; int status; } cases[] = {
      {"ZZZ\r\n\r\n", 400},
      {"\r\n", 400},
      {"3\r\nabcX\r\n", 400},
      {"3\rX", 400},
      {"ffffffffffffffffffff\r\n", 413},
      {"65\r\n", 413},  // 101 bytes > 100
      {"32\r\n" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
       "33\r\n", 413},   // 50 + 51 > 100
  };
  for (auto& c : cases) {
    std::string body;
    size_t used = 0;
    ParseError e;
    ChunkedDecoder::Status st = decode(c.wire, 1, 100, &body, &used, &e);
    if (st != ChunkedDecoder::Status::error) fail_msg("%s: not refused", c.wire);
    assert_int_equal(e.status, c.status);
  }
  // Incomplete is need_more, never done.
  std::string body;
  size_t used = 0;
  ParseError e;
  assert_int_equal(int(decode("5\r\nab", 1, 100, &body, &used, &e)), int(ChunkedDecoder::Status::need_more));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_get),
      cmocka_unit_test(test_bare_lf_and_leading_blank_lines),
      cmocka_unit_test(test_keep_alive_rules),
      cmocka_unit_test(test_methods_and_targets),
      cmocka_unit_test(test_malformed_is_400),
      cmocka_unit_test(test_versions),
      cmocka_unit_test(test_lengths_and_encodings),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_incremental),
      cmocka_unit_test(test_rebase),
      cmocka_unit_test(test_chunked),
      cmocka_unit_test(test_chunked_errors),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
