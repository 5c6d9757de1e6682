// Fuzz target: the POST /publish query string (rt::parse_publish_query).
// Invariants: never crashes; on success the channel is valid and the backlog is the default
// or in 1..10000, and "c=<channel>&backlog=<n>" parses back to the same; on failure the
// error names something and makes a JSON error body.
#include <jansson.h>

#include <string>

#include "../fuzz_check.hpp"
#include "protocol/protocol.hpp"
#include "publish_query.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view query(reinterpret_cast<const char*>(data), size);
  const uint32_t kDefault = 100;
  std::string channel, error;
  uint32_t backlog = 0;
  if (!rt::parse_publish_query(query, kDefault, &channel, &backlog, &error)) {
    FUZZ_CHECK(!error.empty());
    std::string body = rt::proto::error_body(error);
    json_error_t e;
    json_t* j = json_loadb(body.data(), body.size(), JSON_ALLOW_NUL, &e);
    FUZZ_CHECK(j != nullptr && json_is_string(json_object_get(j, "error")));
    json_decref(j);
    return 0;
  }
  FUZZ_CHECK(rt::proto::valid_channel_name(channel));
  FUZZ_CHECK(backlog >= 1 && backlog <= 10000);
  std::string rebuilt = "c=" + channel + "&backlog=" + std::to_string(backlog);
  std::string c2, e2;
  uint32_t b2 = 0;
  FUZZ_CHECK(rt::parse_publish_query(rebuilt, kDefault, &c2, &b2, &e2));
  FUZZ_CHECK(c2 == channel && b2 == backlog);
  return 0;
}
