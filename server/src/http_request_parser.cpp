#include "http_request_parser.hpp"

#include <cstring>

namespace rt::http {

namespace {

// Bytes a request line may have beyond its target: method, two spaces, "HTTP/1.1", CRLF.
constexpr size_t kLineSlack = 32;
constexpr uint32_t kMaxChunkLine = 4096;     // a chunk-size line with its extensions
constexpr uint32_t kMaxTrailerBytes = 8192;  // all trailer lines of one body

bool is_tchar(unsigned char c) noexcept {
  // RFC 9110 token characters.
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Method method_of(std::string_view m) noexcept {
  switch (m.size()) {
    case 3:
      if (m == "GET") return Method::get;
      if (m == "PUT") return Method::put;
      break;
    case 4:
      if (m == "POST") return Method::post;
      if (m == "HEAD") return Method::head;
      break;
    case 5:
      if (m == "PATCH") return Method::patch;
      if (m == "TRACE") return Method::trace;
      break;
    case 6:
      if (m == "DELETE") return Method::del;
      break;
    case 7:
      if (m == "OPTIONS") return Method::options;
      if (m == "CONNECT") return Method::connect;
      break;
  }
  return Method::other;
}

HeadStatus fail(ParseError* err, int status, const char* message) noexcept {
  err->status = status;
  err->message = message;
  return HeadStatus::error;
}

// Splits the next line off `rest` (LF or CRLF ended; the caller guarantees an LF exists).
std::string_view next_line(std::string_view* rest) noexcept {
  size_t lf = rest->find('\n');
  std::string_view line = rest->substr(0, lf);
  rest->remove_prefix(lf + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Parses the request line into *out. Returns HeadStatus::complete when it is well formed.
HeadStatus parse_request_line(std::string_view line, RequestHead* out, ParseError* err) noexcept {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(err, 400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  for (char c : method)
    if (!is_tchar(static_cast<unsigned char>(c))) return fail(err, 400, "malformed request line: bad method");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(err, 400, "malformed request line: no HTTP version");
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (target.empty()) return fail(err, 400, "malformed request line: empty target");
  for (char ch : target) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return fail(err, 400, "malformed request line: bad character in the target");
  }
  if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(err, 400, "malformed request line: bad HTTP version");
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
    return fail(err, 505, "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)");
  out->method_name = method;
  out->method = method_of(method);
  out->minor = version[7] - '0';
  out->target = target;

  std::string_view path = target;
  if (target[0] != '/') {
    if (target == "*") {
      // OPTIONS * : no resource
    } else {
      // absolute-form (what a client speaking to a proxy sends): scheme://authority/path?query
      size_t scheme_end = target.find("://");
      bool http = scheme_end != std::string_view::npos &&
                  (iequals(target.substr(0, scheme_end), "http") || iequals(target.substr(0, scheme_end), "https"));
      if (!http) return fail(err, 400, "bad request target");
      size_t start = target.find_first_of("/?", scheme_end + 3);
      path = start == std::string_view::npos ? std::string_view() : target.substr(start);
      if (path.empty() || path[0] == '?') {
        // No path: the resource is "/"; keep the query (the view of "/" is static).
        std::string_view q = path;
        path = std::string_view("/", 1);
        if (!q.empty()) {
          out->path = path;
          out->query = q.substr(1);
          out->has_query = true;
          return HeadStatus::complete;
        }
      }
    }
  }
  size_t qm = path.find('?');
  if (qm != std::string_view::npos) {
    out->query = path.substr(qm + 1);
    out->has_query = true;
    path = path.substr(0, qm);
  }
  size_t hash = path.find('#');  // never sent by browsers; not part of the path
  if (hash != std::string_view::npos) path = path.substr(0, hash);
  out->path = path;
  return HeadStatus::complete;
}

// Parses a decimal Content-Length value; false when not 1..19 digits.
bool parse_length(std::string_view v, uint64_t* out) noexcept {
  if (v.empty() || v.size() > 19) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + uint64_t(c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

void RequestHead::rebase(const char* from, const char* to) noexcept {
  auto move = [&](std::string_view& v) {
    // Views outside the buffer (the static "/" of an absolute-form target) stay as they are.
    if (v.data() >= from && v.data() <= from + head_len) v = std::string_view(to + (v.data() - from), v.size());
  };
  move(method_name);
  move(target);
  move(path);
  move(query);
  move(headers);
}

HeadStatus parse_request_head(std::string_view buf, const ParseLimits& lim, HeadScan* scan, RequestHead* out,
                              ParseError* err) noexcept {
  size_t start = 0;
  while (start < buf.size() && (buf[start] == '\r' || buf[start] == '\n')) start++;
  if (start > kLineSlack) return fail(err, 400, "malformed request: empty lines before the request line");
  if (scan->pos < start) scan->pos = start;

  // Find the blank line that ends the head: an LF followed by LF or CRLF.
  size_t end = 0;
  const char* base = buf.data();
  while (scan->pos < buf.size()) {
    const void* p = memchr(base + scan->pos, '\n', buf.size() - scan->pos);
    if (p == nullptr) {
      scan->pos = buf.size();
      break;
    }
    size_t i = size_t(static_cast<const char*>(p) - base);
    scan->line_ended = true;
    if (i + 1 >= buf.size()) {
      scan->pos = i;  // look at this LF again when more bytes come
      break;
    }
    if (buf[i + 1] == '\n') {
      end = i + 2;
      break;
    }
    if (buf[i + 1] == '\r') {
      if (i + 2 >= buf.size()) {
        scan->pos = i;
        break;
      }
      if (buf[i + 2] == '\n') {
        end = i + 3;
        break;
      }
    }
    scan->pos = i + 1;
  }
  if (end == 0) {
    if (!scan->line_ended && buf.size() - start > lim.max_url + kLineSlack)
      return fail(err, 414, "URL too long");
    if (buf.size() > lim.max_head) return fail(err, 431, "request head too large");
    return HeadStatus::incomplete;
  }
  if (end > lim.max_head) return fail(err, 431, "request head too large");

  *out = RequestHead();
  out->head_len = end;
  std::string_view rest = buf.substr(start, end - start);
  HeadStatus st = parse_request_line(next_line(&rest), out, err);
  if (st != HeadStatus::complete) return st;

  // Header lines: everything up to the blank line.
  std::string_view headers = rest;
  headers.remove_suffix(headers.size() >= 2 && headers[headers.size() - 2] == '\r' ? 2 : 1);
  out->headers = headers;
  bool conn_close = false, conn_keep_alive = false, te_seen = false;
  while (!rest.empty()) {
    std::string_view line = next_line(&rest);
    if (line.empty()) break;  // the blank line
    if (++out->header_count > lim.max_headers) return fail(err, 431, "too many request headers");
    if (line[0] == ' ' || line[0] == '\t') return fail(err, 400, "malformed header: folded lines are not accepted");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(err, 400, "malformed header line");
    std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (!is_tchar(static_cast<unsigned char>(c))) return fail(err, 400, "malformed header name");
    std::string_view value = trim(line.substr(colon + 1));
    for (char ch : value) {
      auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(err, 400, "malformed header value: control character");
    }
    switch (lower(name[0])) {
      case 'c':
        if (iequals(name, "content-length")) {
          uint64_t n = 0;
          if (!parse_length(value, &n)) return fail(err, 400, "bad Content-Length");
          if (out->has_length && n != out->content_length) return fail(err, 400, "conflicting Content-Length headers");
          out->has_length = true;
          out->content_length = n;
        } else if (iequals(name, "connection")) {
          std::string_view v = value;
          while (!v.empty()) {
            size_t comma = v.find(',');
            std::string_view tok = trim(v.substr(0, comma));
            if (iequals(tok, "close")) conn_close = true;
            else if (iequals(tok, "keep-alive")) conn_keep_alive = true;
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
          }
        }
        break;
      case 't':
        if (iequals(name, "transfer-encoding")) {
          if (te_seen || !iequals(value, "chunked"))
            return fail(err, 501, "unsupported Transfer-Encoding (only chunked is)");
          te_seen = true;
          out->chunked = true;
        }
        break;
      case 'e':
        if (iequals(name, "expect") && iequals(value, "100-continue")) out->expect_continue = true;
        break;
      default:
        break;
    }
  }
  if (out->chunked && out->has_length)
    return fail(err, 400, "both Content-Length and Transfer-Encoding given");
  out->keep_alive = out->minor >= 1 ? !conn_close : (conn_keep_alive && !conn_close);
  if (out->content_length > lim.max_body) return fail(err, 413, "body too large");
  return HeadStatus::complete;
}

bool find_header(std::string_view headers, std::string_view name, std::string_view* value) noexcept {
  while (!headers.empty()) {
    size_t lf = headers.find('\n');
    std::string_view line = headers.substr(0, lf);
    headers.remove_prefix(lf == std::string_view::npos ? headers.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > name.size() && line[name.size()] == ':' && iequals(line.substr(0, name.size()), name)) {
      *value = trim(line.substr(name.size() + 1));
      return true;
    }
  }
  return false;
}

ChunkedDecoder::Status ChunkedDecoder::feed(std::string_view in, uint64_t max_body, std::string* body,
                                            size_t* used, ParseError* err) {
  auto error = [&](int status, const char* message, size_t i) {
    err->status = status;
    err->message = message;
    *used = i;
    return Status::error;
  };
  size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    switch (state_) {
      case State::size: {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d >= 0) {
          if (left_ > (max_body >> 4)) return error(413, "body too large", i);
          left_ = left_ * 16 + uint64_t(d);
          have_digit_ = true;
          i++;
          break;
        }
        if (!have_digit_) return error(400, "malformed chunked body: bad chunk size", i);
        if (c == ';' || c == ' ' || c == '\t') state_ = State::ext;
        else if (c == '\r') state_ = State::size_lf;
        else if (c == '\n') {
          state_ = State::size_lf;
          continue;  // the LF itself is handled by size_lf
        } else return error(400, "malformed chunked body: bad chunk size", i);
        i++;
        break;
      }
      case State::ext:
        if (++line_len_ > kMaxChunkLine) return error(400, "malformed chunked body: chunk extension too long", i);
        if (c == '\r') state_ = State::size_lf;
        else if (c == '\n') {
          state_ = State::size_lf;
          continue;  // the LF itself is handled by size_lf
        }
        i++;
        break;
      case State::size_lf:
        if (c != '\n') return error(400, "malformed chunked body: CR without LF", i);
        i++;
        line_len_ = 0;
        if (left_ == 0) {
          state_ = State::trailer_start;
        } else {
          if (total_ + left_ > max_body) return error(413, "body too large", i);
          state_ = State::data;
        }
        break;
      case State::data: {
        size_t n = in.size() - i;
        if (n > left_) n = size_t(left_);
        body->append(in.data() + i, n);
        i += n;
        left_ -= n;
        total_ += n;
        if (left_ == 0) state_ = State::data_cr;
        break;
      }
      case State::data_cr:
        if (c == '\r') state_ = State::data_lf;
        else if (c == '\n') state_ = State::size, have_digit_ = false;
        else return error(400, "malformed chunked body: no CRLF after chunk data", i);
        i++;
        break;
      case State::data_lf:
        if (c != '\n') return error(400, "malformed chunked body: no CRLF after chunk data", i);
        state_ = State::size;
        have_digit_ = false;
        i++;
        break;
      case State::trailer_start:
        if (c == '\r') state_ = State::last_lf;
        else if (c == '\n') {
          state_ = State::done;
          *used = i + 1;
          return Status::done;
        } else {
          state_ = State::trailer;
          continue;
        }
        i++;
        break;
      case State::trailer:
        if (++line_len_ > kMaxTrailerBytes) return error(400, "malformed chunked body: trailers too long", i);
        if (c == '\n') state_ = State::trailer_start;
        i++;
        break;
      case State::last_lf:
        if (c != '\n') return error(400, "malformed chunked body: CR without LF", i);
        state_ = State::done;
        *used = i + 1;
        return Status::done;
      case State::trailer_lf:
      case State::done:
        *used = i;
        return Status::done;
    }
  }
  *used = i;
  return state_ == State::done ? Status::done : Status::need_more;
}

}  // namespace rt::http
