// How a native host (the CMocka tests, a fuzzer, a native embedding) hands the core a poll's
// HTTP answer as text: a 200's body is read with proto::parse_response (jansson, the rules of
// proto::ResponseReader) and goes to ClientCore::on_answer; other statuses to on_response.
// The wasm build does not link this: its host parses with JSON.parse (bindings.cpp).
#pragma once

#include <string_view>

#include "client_core.hpp"

namespace rt::client {

void on_http_response(ClientCore& core, Millis now, uint64_t poll_id, int http_status, std::string_view body,
                      Millis retry_after_ms, Actions* out);

}  // namespace rt::client
