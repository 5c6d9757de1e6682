// Fuzz target: the GET /rt query string (rt::proto::parse_rt_query).
// Invariants: never crashes; on success every channel is valid and unique, ids are in
// 0..kMaxId, the count is within the limit, and serialising the result with
// append_query_pair (whose length query_pair_length predicts) parses back to the same
// list; on failure the list is empty and the error body is JSON.
#include <jansson.h>

#include <set>
#include <string>
#include <vector>

#include "../fuzz_check.hpp"
#include "protocol.hpp"

using namespace rt::proto;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the channel limit (1..16, or the server's default 500).
  size_t limit = data[0] < 200 ? size_t(data[0] % 16) + 1 : 500;
  std::string_view query(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<ChannelPos> out;
  std::string detail;
  QueryError err = parse_rt_query(query, limit, &out, &detail);
  if (err != QueryError::none) {
    FUZZ_CHECK(out.empty());
    FUZZ_CHECK(!detail.empty());
    std::string body = error_body(detail);
    json_error_t e;
    json_t* j = json_loadb(body.data(), body.size(), JSON_ALLOW_NUL, &e);
    FUZZ_CHECK(j != nullptr && json_is_string(json_object_get(j, "error")));
    json_decref(j);
    return 0;
  }
  FUZZ_CHECK(!out.empty() && out.size() <= limit);
  std::set<std::string> names;
  std::string rebuilt;
  size_t predicted = 0;
  for (size_t i = 0; i < out.size(); i++) {
    FUZZ_CHECK(valid_channel_name(out[i].channel));
    FUZZ_CHECK(out[i].last_id <= kMaxId);
    FUZZ_CHECK(names.insert(out[i].channel).second);
    append_query_pair(&rebuilt, out[i], i == 0);
    predicted += query_pair_length(out[i], i == 0);
  }
  FUZZ_CHECK(rebuilt.size() == predicted);
  std::vector<ChannelPos> back;
  FUZZ_CHECK(parse_rt_query(rebuilt, limit, &back, &detail) == QueryError::none);
  FUZZ_CHECK(back.size() == out.size());
  for (size_t i = 0; i < out.size(); i++)
    FUZZ_CHECK(back[i].channel == out[i].channel && back[i].last_id == out[i].last_id);
  // The limit is exact: one channel fewer allowed refuses the query.
  FUZZ_CHECK(parse_rt_query(query, out.size() - 1, &back, &detail) == QueryError::bad_request);
  FUZZ_CHECK(back.empty());
  return 0;
}
