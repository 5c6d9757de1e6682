// POST /publish?c=CHANNEL[&backlog=N]: bearer-token check, payload validation (one JSON
// value, at most --max-body bytes), then publish.lua (one atomic EVALSHA) and {"id":N}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http_server.hpp"
#include "publish_query.hpp"
#include "publish_token.hpp"
#include "worker.hpp"

namespace rt {

// Answers `req` exactly once (now, or when Redis replies). `query` is the raw query string.
void handle_publish(Worker& w, http::Request* req, std::string_view query, uint64_t started_us) noexcept;

}  // namespace rt
