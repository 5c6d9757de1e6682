// Strict JSON validation without building a tree (RFC 8259): any value, integers of any size
// (a JavaScript backend writes 1e20 as 100000000000000000000, which jansson reads only as a
// double: see protocol.cpp's load_json), strings checked for UTF-8 and escapes, nesting
// bounded without recursion. Used for the POST /publish body and for message JSON read from
// Redis, so that rt never emits JSON that its own readers cannot read. It accepts exactly
// what jansson (as rt reads JSON) accepts, up to max_depth, and refuses with jansson the
// valid-looking JSON no reader in rt can represent: numbers beyond a double's range (1e400),
// escapes of unpaired UTF-16 surrogates ("\ud800"), \u0000 in an object key, and duplicate
// keys in one object (compared decoded; rt's readers refuse them: which value would count?).
// tests/fuzz/server/fuzz_json_check.cpp checks that agreement.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rt {

constexpr size_t kMaxJsonDepth = 1000;

// True when `text` is exactly one JSON value, optionally surrounded by whitespace, nested at
// most `max_depth` arrays/objects deep.
bool json_valid(std::string_view text, size_t max_depth = kMaxJsonDepth) noexcept;

// Validates message JSON {"id":<id>,"prev":<prev>,"payload":<value>} as stored in Redis and
// returns its id (1..2^53-1) and prev (0..id-1; absent in a version-1 message: id - 1). The
// canonical forms (publish.lua's, and version 1's without prev) are checked without a JSON
// library; any other layout (whitespace, member order) goes through rt::proto::parse_message.
bool check_message(std::string_view json, uint64_t* id, uint64_t* prev);

}  // namespace rt
