#include "publish.hpp"

#include <cstring>

#include "http_reply.hpp"
#include "json_check.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "protocol/protocol.hpp"
#include "publish_token.hpp"
#include "scripts.hpp"

namespace rt {

namespace {

// One publish waiting for Redis. Freed in its reply callback (called exactly once).
struct PublishCall {
  Worker* w;
  http::Request* req;
  uint64_t started_us;
  std::string channel;
  long long id = 0;  // once stored (--publish-min-replicas: waiting for the replicas)
};

void finish(Worker& w, http::Request* req, int code, std::string_view body_or_error, bool is_error,
            uint64_t started_us, ExtraHeaders extra_headers = {}) noexcept {
  if (is_error)
    send_error(req, code, body_or_error, metrics::Endpoint::publish, w.reply_options(), extra_headers);
  else
    send_json(req, code, body_or_error, metrics::Endpoint::publish, w.reply_options());
  uint64_t us = now_us() - started_us;
  RT_LOG(debug, "publish answered").kv("status", code).kv("ms", double(us) / 1000.0);
}

void answer_stored(PublishCall* call) noexcept {
  std::string body;
  try {
    body = "{\"id\":" + std::to_string(call->id) + "}";
  } catch (...) {
    finish(*call->w, call->req, 503, "out of memory", true, call->started_us);
    return;
  }
  finish(*call->w, call->req, 200, body, false, call->started_us);
}

// --publish-min-replicas: WAIT answered (confirmed = replicas counted, -1 unknown).
void on_replicated(void* priv, long long confirmed) noexcept {
  auto* call = static_cast<PublishCall*>(priv);
  Worker& w = *call->w;
  ReplicaWait& rw = *w.replica_wait();
  if (confirmed >= 0 && uint64_t(confirmed) >= rw.replicas()) {
    answer_stored(call);
  } else {
    // Stored (and delivered to pollers) on the master, but it may not survive a failover:
    // the publisher decides (retry, and accept a duplicate; or accept the risk).
    metrics::get().publish_unconfirmed.fetch_add(1, std::memory_order_relaxed);
    std::string detail = confirmed < 0 ? "the connection to the master was lost before the replicas answered"
                                       : std::to_string(confirmed) + " confirmed within " +
                                             std::to_string(rw.timeout_ms()) + " ms";
    std::string body;
    try {
      JsonPtr j(json_pack("{s:s, s:I}", "error",
                          ("stored on the master, not confirmed on " + std::to_string(rw.replicas()) +
                           (rw.replicas() == 1 ? " replica (" : " replicas (") + detail + ")").c_str(),
                          "id", json_int_t(call->id)));
      char* text = j ? json_dumps(j.get(), JSON_COMPACT) : nullptr;
      if (text) {
        body = text;
        free(text);
      }
    } catch (...) {
    }
    RT_LOG(warn, "publish not confirmed by the replicas").kv("channel", call->channel).kv("id", int64_t(call->id))
        .kv("confirmed", int64_t(confirmed));
    if (body.empty()) {
      finish(w, call->req, 503, "stored on the master, not confirmed on the replicas", true, call->started_us);
    } else {
      send_json(call->req, 503, body, metrics::Endpoint::publish, w.reply_options());
    }
  }
  delete call;
}

void on_published(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<PublishCall*>(priv);
  Worker& w = *call->w;
  if (r != nullptr && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
    metrics::get().publishes.fetch_add(1, std::memory_order_relaxed);
    call->id = r->integer;
    RT_LOG(debug, "published").kv("channel", call->channel).kv("id", int64_t(r->integer));
    if (w.replica_wait()) {
      w.replica_wait()->after_write(on_replicated, call);  // answers and frees the call
      return;
    }
    answer_stored(call);
  } else {
    std::string err = r == nullptr ? "redis unavailable"
                      : r->type == REDIS_REPLY_ERROR ? "redis error: " + std::string(r->str, r->len)
                                                     : "redis error: unexpected reply to publish.lua";
    metrics::get().redis_errors.fetch_add(1, std::memory_order_relaxed);
    RT_LOG(warn, "publish failed").kv("channel", call->channel).kv("error", err);
    finish(w, call->req, 503, err, true, call->started_us);
  }
  delete call;
}

}  // namespace

void handle_publish(Worker& w, http::Request* req) noexcept {
  const Config& cfg = w.cfg();
  const uint64_t started_us = req->started_us();
  const std::string_view query = req->query();
  auto fail = [&](int code, std::string_view msg) { finish(w, req, code, msg, true, started_us); };
  std::shared_ptr<const std::string> token = publish_token::current();  // SIGHUP may replace it
  if (token->empty()) {
    fail(403, "publishing is disabled: the server has no publish token (--publish-token-file or RT_PUBLISH_TOKEN)");
    return;
  }
  bool have_auth = false;
  std::string_view auth = req->header("Authorization", &have_auth);
  std::string_view presented;
  if (auth.size() >= 7 && strncasecmp(auth.data(), "Bearer ", 7) == 0) {
    presented = auth.substr(7);
    while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
    while (!presented.empty() && (presented.back() == ' ' || presented.back() == '\t')) presented.remove_suffix(1);
  }
  if (!token_matches(presented, *token)) {
    finish(w, req, 401, !have_auth ? "missing Authorization: Bearer <token>" : "invalid publish token", true,
           started_us, {{"WWW-Authenticate", "Bearer"}});
    return;
  }
  std::string channel, error;
  uint32_t backlog = 0;
  if (!parse_publish_query(query, cfg.backlog, &channel, &backlog, &error)) {
    fail(400, error);
    return;
  }
  // evhttp refuses bodies over --max-body (413) before they reach us.
  std::string_view body = req->body();
  while (!body.empty() && strchr(" \t\r\n", body.front())) body.remove_prefix(1);
  while (!body.empty() && strchr(" \t\r\n", body.back())) body.remove_suffix(1);
  if (!json_valid(body)) {
    fail(400, body.empty() ? "empty body: expected one JSON value"
                           : "body is not one valid JSON value (UTF-8, nested at most " +
                                 std::to_string(kMaxJsonDepth) + " deep)");
    return;
  }
  if (w.cluster() == nullptr && !w.publish_link().up()) {
    metrics::get().redis_errors.fetch_add(1, std::memory_order_relaxed);
    fail(503, "redis unavailable");
    return;
  }
  auto* call = new (std::nothrow) PublishCall{&w, req, started_us, channel};
  if (call == nullptr) {
    fail(503, "out of memory");
    return;
  }
  bool sent = false;
  try {
    const proto::Keys& k = w.keys();
    std::vector<std::string> keys{k.msg_id(channel), k.backlog(channel), k.pubsub(channel)};
    std::vector<std::string> args{std::string(body), std::to_string(backlog), std::to_string(cfg.ttl_s)};
    if (ClusterLinks* cl = w.cluster()) {
      // Routed to the channel's master; SPUBLISH to its sharded subscribers.
      args.push_back("sharded");
      sent = cl->run_script(w.scripts().publish, keys, args, on_published, call);
    } else {
      sent = run_script(w.publish_link(), w.scripts().publish, keys, args, on_published, call);
    }
  } catch (...) {
  }
  if (!sent) {
    delete call;
    metrics::get().redis_errors.fetch_add(1, std::memory_order_relaxed);
    fail(503, "redis unavailable");
  }
}

}  // namespace rt
