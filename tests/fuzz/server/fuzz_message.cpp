// Fuzz target: message JSON as read from Redis. rt::check_message (the server's fast path
// for publish.lua's canonical layout) and rt::proto::parse_message (jansson) must agree on
// every input, on acceptance and on id and prev; an accepted message has 1 <= id <= kMaxId
// and prev < id, its payload (payload_of) is valid JSON, and make_message_json of its parts
// is accepted again with the same ids.
//
// Input: the first byte picks raw text, or a canonical-looking message assembled from
// fuzzed id / prev / payload texts (so that the fast path is reached often).
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "../fuzz_check.hpp"
#include "json_check.hpp"
#include "protocol/protocol.hpp"

using rt::proto::kMaxId;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  uint8_t mode = fdp.ConsumeIntegral<uint8_t>();
  std::string text;
  if (mode < 64) {
    text = fdp.ConsumeRemainingBytesAsString();
  } else {
    std::string id = fdp.ConsumeRandomLengthString(24);
    std::string prev = fdp.ConsumeRandomLengthString(24);
    std::string payload = fdp.ConsumeRemainingBytesAsString();
    text = "{\"id\":" + id + ((mode & 1) ? ",\"prev\":" + prev : std::string()) + ",\"payload\":" + payload + "}";
  }
  uint64_t id1 = 0, prev1 = 0, id2 = 0, prev2 = 0;
  bool a = rt::proto::parse_message(text, &id1, &prev1);
  bool b = rt::check_message(text, &id2, &prev2);
  if (a != b) std::fprintf(stderr, "parse_message %d, check_message %d\n", a, b);
  FUZZ_CHECK(a == b);
  std::string payload;
  FUZZ_CHECK(rt::proto::payload_of(text, &payload) == a);
  if (!a) return 0;
  FUZZ_CHECK(id1 == id2 && prev1 == prev2);
  FUZZ_CHECK(id1 >= 1 && id1 <= kMaxId && prev1 < id1);
  FUZZ_CHECK(rt::json_valid(payload));
  std::string again = rt::proto::make_message_json(id1, prev1, payload);
  uint64_t id3 = 0, prev3 = 0;
  FUZZ_CHECK(rt::check_message(again, &id3, &prev3) && id3 == id1 && prev3 == prev1);
  FUZZ_CHECK(rt::proto::parse_message(again, &id3, &prev3) && id3 == id1 && prev3 == prev1);
  std::string payload2;
  FUZZ_CHECK(rt::proto::payload_of(again, &payload2) && payload2 == payload);
  return 0;
}
