// The boundary between the core and its JavaScript host (bindings.cpp): the host receives each
// batch of actions as one JSON array (one JSON.parse per event), and passes options and scroll
// measurements in as plain values, checked here (errors are reported, never thrown). No JSON
// is parsed in the wasm: payloads stay in the host, which parsed the response with JSON.parse,
// and cross as handles ("p", "payload": the payload_ref of the message).
//
// Action objects ("k" is the kind):
//   {"k":"start","poll":P,"url":"..."}          {"k":"abort","poll":P}
//   {"k":"timer","ms":N}            N = -1 cancels
//   {"k":"status","state":"retrying","attempt":2,"retryInMs":731,"httpStatus":503,"reason":"..."}
//   {"k":"msg","c":"chan","id":7,"p":<payload handle>,"t":T}       T: 1 subscribers, 2 scroll, 3 both
//   {"k":"reset","c":"chan","id":70,"r":"behind"|"lost","newest":{"id":70,"payload":<handle>}|null,"t":T}
//   {"k":"measure"}                 {"k":"probe","probe":P,"url":"..."}
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "actions.hpp"
#include "client_core.hpp"
#include "scroll_selector.hpp"

namespace rt::client {

// Serialises actions as a JSON array (see above).
std::string actions_to_json(const Actions& actions);

// Appends `s` as a JSON string literal: quotes, backslashes and control characters are
// escaped, valid UTF-8 is kept, and each byte of invalid UTF-8 becomes U+FFFD.
void append_json_string(std::string* out, std::string_view s);

// Sets the option `key` (host.mjs's names: baseUrl, path, urlBudget, pollTimeoutMs, ...) from
// the host's value over *cfg. Unknown keys, wrong types and non-integral numbers are errors
// (*detail names the option). Does not validate ranges: call validate_config afterwards.
bool set_option(Config* cfg, std::string_view key, const proto::Value& value, std::string* detail);

// The measured viewport [top,left,bottom,right]: false with *detail when a coordinate is not
// a finite number.
bool scroll_viewport(const double rect[4], Rect* viewport, std::string* detail);

// Scroll item number `index` (for the message) of a measurement: its channel (any text:
// invalid names are the core's to skip), rect [top,left,bottom,right] and lastId. False with
// *detail when a coordinate is not finite or lastId is not an integer in 0..2^53-1.
bool scroll_item(size_t index, std::string_view channel, const double rect[4], double last_id, ScrollItem* item,
                 std::string* detail);

}  // namespace rt::client
