// POST /publish?c=CHANNEL[&backlog=N]: bearer-token check, payload validation (one JSON
// value, at most --max-body bytes), then publish.lua (one atomic EVALSHA) and {"id":N}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http_server.hpp"
#include "worker.hpp"

namespace rt {

// The route's handler: answers `req` exactly once (now, or when Redis replies).
void handle_publish(Worker& w, http::Request* req) noexcept;

// Constant-time comparison of a presented bearer token with the configured one.
bool token_matches(std::string_view presented, std::string_view expected) noexcept;

// Parses the query of POST /publish: c (required, valid channel name), backlog (optional,
// 1..10000, default `default_backlog`), cachebreak (ignored). Returns false with *error
// naming the parameter.
bool parse_publish_query(std::string_view query, uint32_t default_backlog, std::string* channel,
                         uint32_t* backlog, std::string* error);

}  // namespace rt
