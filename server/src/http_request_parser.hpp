// HTTP/1.x request parsing with no I/O: the request head (request line and headers, the
// keep-alive rules of HTTP/1.0 and 1.1, Content-Length, Transfer-Encoding: chunked,
// Expect: 100-continue) and the chunked body framing. The connection code (http_server)
// feeds it bytes as they arrive; every limit gives a precise status and message, and bad
// input never reads outside the given bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rt::http {

enum class Method : uint8_t { get, head, post, put, del, options, trace, connect, patch, other };

struct ParseLimits {
  size_t max_url = 65536;         // request-target bytes; a request line that cannot end
                                  // within this (plus method and version) is a 414
  size_t max_head = 80 << 10;     // request line + headers + blank line; more: 431
  size_t max_headers = 100;       // header lines; more: 431
  uint64_t max_body = 65536;      // Content-Length or decoded chunked size; more: 413
};

// Why a request was refused: an HTTP status (400, 413, 414, 431, 501, 505) and a sentence
// for the JSON error body (a string literal). After an error the connection cannot be
// parsed further: answer it and close.
struct ParseError {
  int status = 0;
  const char* message = "";
};

// A parsed request head. The views point into the bytes given to parse_request_head() and
// stay valid as long as those bytes do (rebase() moves them to a copy).
struct RequestHead {
  Method method = Method::other;
  std::string_view method_name;   // as sent, e.g. "GET"
  std::string_view target;        // request-target as sent (still percent-encoded)
  std::string_view path;          // target up to '?' (absolute-form: the path part only)
  std::string_view query;         // after '?', empty when none
  bool has_query = false;
  int minor = 1;                  // HTTP/1.<minor>: 0 or 1
  bool keep_alive = true;         // the client allows another request on this connection
  bool chunked = false;           // Transfer-Encoding: chunked
  bool has_length = false;        // Content-Length given
  uint64_t content_length = 0;
  bool expect_continue = false;   // Expect: 100-continue
  size_t head_len = 0;            // bytes of the head including the blank line
  size_t header_count = 0;
  std::string_view headers;       // the header lines (for find_header), without the blank line

  // True when a body follows the head (chunked, or Content-Length > 0).
  bool has_body() const noexcept { return chunked || content_length > 0; }
  // Moves every view from the buffer starting at `from` to the same offsets in `to`.
  void rebase(const char* from, const char* to) noexcept;
};

enum class HeadStatus { incomplete, complete, error };

// Parses the request head at the start of `buf`. Empty lines before the request line are
// skipped (their bytes count in head_len). Lines may end in CRLF or a bare LF.
//   incomplete: no blank line yet and no limit crossed; call again with more bytes.
//   complete:   *out filled (views into buf); the head is buf[0, out->head_len).
//   error:      *err says why (414 for a request line that outgrew the URL limit, 431 for
//               a head over max_head or too many headers, 400 malformed, 413 body too
//               large by Content-Length, 501 unsupported Transfer-Encoding, 505 version).
//               For 413 and 414 the message is generic: the caller words it with its limit.
// *scan (fresh for each new head, kept while the same head grows) lets the search for the
// blank line resume where it stopped, so a head arriving in many pieces costs O(n).
// A target longer than max_url inside a complete head is NOT an error here: the router
// answers it 414 and the connection stays usable.
struct HeadScan {
  size_t pos = 0;           // where the search for the next LF resumes
  bool line_ended = false;  // the request line's LF was seen
};
HeadStatus parse_request_head(std::string_view buf, const ParseLimits& lim, HeadScan* scan,
                              RequestHead* out, ParseError* err) noexcept;

// Finds header `name` (ASCII case-insensitive) in `headers` (RequestHead::headers): the
// first one's value with surrounding spaces/tabs removed. Returns false when absent.
bool find_header(std::string_view headers, std::string_view name, std::string_view* value) noexcept;

// Decodes a chunked body (RFC 9112 section 7.1): chunk sizes in hex, extensions ignored,
// trailer fields read and dropped. Feed it the bytes that follow the head, in as many
// pieces as they arrive.
class ChunkedDecoder {
 public:
  enum class Status { need_more, done, error };

  // Consumes a prefix of `in` (*used bytes, all of it unless done/error), appending the
  // decoded data to *body. done: the last chunk and trailers are complete, the bytes after
  // *used belong to the next request. error: *err (400 bad framing, 413 the decoded body
  // would exceed max_body).
  Status feed(std::string_view in, uint64_t max_body, std::string* body, size_t* used,
              ParseError* err);

 private:
  enum class State : uint8_t { size, ext, size_lf, data, data_cr, data_lf, trailer_start, trailer, trailer_lf, last_lf, done };
  State state_ = State::size;
  bool have_digit_ = false;
  uint64_t left_ = 0;       // bytes of the current chunk still to come (state data)
  uint64_t total_ = 0;      // decoded so far
  uint32_t line_len_ = 0;   // bytes of the current size/extension/trailer line
};

}  // namespace rt::http
