// The handlers of the route table (router.cpp) that are a few lines each: GET /rt (query
// check, then a Poll), GET /healthz, GET /metrics, the static files. POST /publish has its
// own module (publish.hpp). Each answers `req` exactly once, now or later.
#pragma once

#include "http_server.hpp"

namespace rt {

class Worker;

void handle_rt(Worker& w, http::Request* req) noexcept;
void handle_healthz(Worker& w, http::Request* req) noexcept;
void handle_metrics(Worker& w, http::Request* req) noexcept;
void handle_static(Worker& w, http::Request* req) noexcept;

}  // namespace rt
