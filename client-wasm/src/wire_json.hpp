// JSON at the boundary between the core and its JavaScript host (bindings.cpp): the host
// passes options and scroll measurements as JSON text, and receives each batch of actions
// as one JSON array (one JSON.parse per event; payloads are spliced in verbatim, so the
// page gets them already parsed). Parsing uses jansson; errors are reported, never thrown.
//
// Action objects ("k" is the kind):
//   {"k":"start","poll":P,"url":"..."}          {"k":"abort","poll":P}
//   {"k":"timer","ms":N}            N = -1 cancels
//   {"k":"status","state":"retrying","attempt":2,"retryInMs":731,"httpStatus":503,"reason":"..."}
//   {"k":"msg","c":"chan","id":7,"p":<payload>,"t":T}       T: 1 subscribers, 2 scroll, 3 both
//   {"k":"reset","c":"chan","id":70,"r":"behind"|"lost","newest":{"id":70,"payload":<payload>}|null,"t":T}
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

// Reads options {"baseUrl":"...","path":"/rt","urlBudget":4096,...} over *cfg (keys absent
// keep their defaults). Unknown keys, wrong types and non-integral numbers are errors.
// Does not validate ranges: call validate_config afterwards.
bool config_from_json(std::string_view json, Config* cfg, std::string* detail);

// Reads {"viewport":[top,left,bottom,right],"items":[[channel,top,left,bottom,right,lastId],...]}.
// "viewport" may be absent (page-load lists need no positions); rects may be omitted as
// [channel] or [channel,lastId] items then. Returns false with *detail on malformed input.
bool scroll_from_json(std::string_view json, std::vector<ScrollItem>* items, Rect* viewport,
                      std::string* detail);

}  // namespace rt::client
