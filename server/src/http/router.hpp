// The route table of rt-server, the one place that knows every endpoint: its path, the
// methods it takes, whether it is a JSON endpoint with CORS (Access-Control-Allow-Origin on
// its answers, OPTIONS preflights answered), its metrics label and its handler; and how a
// request that fits no route or method is answered (404; 405 with Allow). match_route() is
// pure (tests/unit/server/test_router.cpp); route_request() applies it to a request.
#pragma once

#include <cstdint>
#include <string_view>

#include "metrics.hpp"

namespace rt {

class Worker;
namespace http {
class Request;
}

using RouteHandler = void (*)(Worker& w, http::Request* req) noexcept;

struct Route {
  const char* path;               // exact path; nullptr: static files (--web), every other path
  metrics::Endpoint endpoint;     // the label of rt_requests_total
  uint16_t methods;               // EVHTTP_REQ_* bits accepted
  const char* allow;              // the Allow header of a 405: the methods accepted
  bool cors;                      // JSON endpoint: CORS headers and preflights (--cors-origin)
  const char* preflight_headers;  // Access-Control-Allow-Headers of a preflight, or nullptr
  RouteHandler handle;
};

enum class RouteAction { handle, preflight, method_not_allowed, not_found };

struct RouteMatch {
  const Route* route;  // nullptr with not_found when no route (and no --web)
  RouteAction action;
};

// Every route, the static files last.
const Route* routes(size_t* count) noexcept;

// The route of `path` (percent-encoded, as sent) and what to do with `method` (an
// EVHTTP_REQ_* value). `web`: static files are served; `cors`: --cors-origin is set.
RouteMatch match_route(std::string_view path, int method, bool web, bool cors) noexcept;

// Answers `req`: 414 for a URL over --max-url, else by match_route (a handler, a CORS
// preflight 204, 405 with Allow, 404).
void route_request(Worker& w, http::Request* req) noexcept;

}  // namespace rt
