// Fuzz target: the JSON checker (rt::json_valid), differential against jansson.
//
// The oracle is jansson read the way every reader in rt reads JSON (protocol.cpp's
// load_json: any value, \u0000 allowed, and a document whose integers overflow 64 bits read
// again with every number as a real). json_valid must accept exactly what that reader
// accepts, except for depth: json_valid refuses nesting deeper than its max_depth
// (kMaxJsonDepth = 1000 by default) and jansson refuses deeper than its own limit (2048).
// So:
//   jansson accepts  => json_valid(text, unlimited) accepts, and json_valid(text) accepts
//                       exactly when the tree is at most kMaxJsonDepth deep;
//   jansson refuses for depth => json_valid(text) refuses;
//   jansson refuses otherwise => json_valid(text, unlimited) refuses.
// One jansson leniency is excluded: it skips a raw NUL byte right after a number or a literal
// ("[false\0]" reads as [false]); a raw NUL byte is never JSON, and json_valid refuses it.
// Duplicate keys are refused by both (JSON_REJECT_DUPLICATES, as rt's readers read).
#include <jansson.h>

#include <cstring>
#include <string_view>

#include "../fuzz_check.hpp"
#include "json_check.hpp"

namespace {

size_t depth_of(const json_t* j) {
  size_t d = 0;
  if (json_is_array(j)) {
    size_t i;
    const json_t* v;
    json_array_foreach(j, i, v) {
      size_t c = depth_of(v);
      if (c > d) d = c;
    }
    return d + 1;
  }
  if (json_is_object(j)) {
    const char* k;
    json_t* v;
    json_object_foreach(const_cast<json_t*>(j), k, v) {
      size_t c = depth_of(v);
      if (c > d) d = c;
    }
    return d + 1;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t kUnlimited = size_t(1) << 30;
  bool ours_unlimited = rt::json_valid(text, kUnlimited);
  bool ours = rt::json_valid(text);
  FUZZ_CHECK(!ours || ours_unlimited);

  const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES;
  json_error_t err;
  json_t* j = json_loadb(text.data(), text.size(), flags, &err);
  if (!j && json_error_code(&err) == json_error_numeric_overflow)
    j = json_loadb(text.data(), text.size(), flags | JSON_DECODE_INT_AS_REAL, &err);
  if (std::memchr(text.data(), 0, text.size()) != nullptr) {
    FUZZ_CHECK(!ours_unlimited);
    json_decref(j);
  } else if (j) {
    if (!ours_unlimited) std::fprintf(stderr, "json_valid refuses what jansson reads\n");
    FUZZ_CHECK(ours_unlimited);
    FUZZ_CHECK(ours == (depth_of(j) <= rt::kMaxJsonDepth));
    json_decref(j);
  } else if (json_error_code(&err) == json_error_stack_overflow) {
    FUZZ_CHECK(!ours);
  } else {
    if (ours_unlimited) std::fprintf(stderr, "json_valid accepts what jansson refuses: %s\n", err.text);
    FUZZ_CHECK(!ours_unlimited);
  }
  return 0;
}
