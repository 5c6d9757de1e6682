#include "response_text.hpp"

namespace rt::client {

void on_http_response(ClientCore& core, Millis now, uint64_t poll_id, int http_status, std::string_view body,
                      Millis retry_after_ms, Actions* out) {
  if (http_status != 200) return core.on_response(now, poll_id, http_status, body, retry_after_ms, out);
  std::vector<proto::ReceivedEntry> entries;
  std::string detail;
  bool ok = proto::parse_response(body, &entries, &detail);
  core.on_answer(now, poll_id, ok ? &entries : nullptr, detail, retry_after_ms, out);
}

}  // namespace rt::client
