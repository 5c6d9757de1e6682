#include "router.hpp"

#include <event2/http.h>

#include <string>

#include "endpoints.hpp"
#include "http_reply.hpp"
#include "http_server.hpp"
#include "publish.hpp"
#include "worker.hpp"

namespace rt {

namespace {

const Route kRoutes[] = {
    {"/rt", metrics::Endpoint::rt, EVHTTP_REQ_GET, "GET", true, nullptr, handle_rt},
    {"/publish", metrics::Endpoint::publish, EVHTTP_REQ_POST, "POST", true, "Authorization, Content-Type",
     handle_publish},
    {"/healthz", metrics::Endpoint::healthz, EVHTTP_REQ_GET, "GET", true, nullptr, handle_healthz},
    {"/metrics", metrics::Endpoint::metrics, EVHTTP_REQ_GET, "GET", false, nullptr, handle_metrics},
    {nullptr, metrics::Endpoint::web, EVHTTP_REQ_GET, "GET", false, nullptr, handle_static},
};
constexpr size_t kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);

}  // namespace

const Route* routes(size_t* count) noexcept {
  *count = kRouteCount;
  return kRoutes;
}

RouteMatch match_route(std::string_view path, int method, bool web, bool cors) noexcept {
  const Route* r = nullptr;
  for (const Route& candidate : kRoutes) {
    if (candidate.path == nullptr ? web : path == candidate.path) {
      r = &candidate;
      break;
    }
  }
  if (r == nullptr) return {nullptr, RouteAction::not_found};
  if ((r->methods & method) != 0) return {r, RouteAction::handle};
  if (method == EVHTTP_REQ_OPTIONS && cors && r->cors) return {r, RouteAction::preflight};
  return {r, RouteAction::method_not_allowed};
}

void route_request(Worker& w, http::Request* req) noexcept {
  const Config& cfg = w.cfg();
  std::string_view p = req->path();
  RouteMatch m = match_route(p, req->method(), !cfg.web_dir.empty(), !cfg.cors_origin.empty());
  metrics::Endpoint ep = m.route ? m.route->endpoint : metrics::Endpoint::other;
  static const ReplyOptions no_cors;
  const ReplyOptions& opt = m.route == nullptr || m.route->cors ? w.reply_options() : no_cors;
  try {
    if (req->target().size() > cfg.max_url) {
      send_error(req, 414, "URL longer than " + std::to_string(cfg.max_url) + " bytes", ep, opt);
      return;
    }
    switch (m.action) {
      case RouteAction::handle:
        m.route->handle(w, req);
        return;
      case RouteAction::preflight:
        if (m.route->preflight_headers != nullptr)
          send_json(req, 204, "", ep, opt,
                    {{"Access-Control-Allow-Methods", m.route->allow},
                     {"Access-Control-Allow-Headers", m.route->preflight_headers},
                     {"Access-Control-Max-Age", "86400"}});
        else
          send_json(req, 204, "", ep, opt,
                    {{"Access-Control-Allow-Methods", m.route->allow}, {"Access-Control-Max-Age", "86400"}});
        return;
      case RouteAction::method_not_allowed:
        send_error(req, 405, std::string("method not allowed: use ") + m.route->allow + " " + std::string(p), ep, opt,
                   {{"Allow", m.route->allow}});
        return;
      case RouteAction::not_found:
        send_error(req, 404, "not found", ep, opt);
        return;
    }
  } catch (...) {
    send_error(req, 503, "out of memory", ep, opt);
  }
}

}  // namespace rt
