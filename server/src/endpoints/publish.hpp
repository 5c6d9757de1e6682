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

// The route's handler: answers `req` exactly once (now, or when Redis replies).
void handle_publish(Worker& w, http::Request* req) noexcept;

}  // namespace rt
