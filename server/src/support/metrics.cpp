#include "metrics.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <vector>

namespace rt::metrics {

namespace {
Registry g_registry;
std::mutex g_listeners_mutex;
std::vector<int> g_listeners;  // one entry per watcher

const char* endpoint_name(size_t e) {
  static const char* names[kEndpoints] = {"rt", "publish", "healthz", "metrics", "web", "other"};
  return names[e];
}

void line(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void line(std::string* out, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) out->append(buf, size_t(n) < sizeof buf ? size_t(n) : sizeof buf - 1);
}

void counter(std::string* out, const char* name, const char* help, uint64_t v) {
  line(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

void gauge(std::string* out, const char* name, const char* help, int64_t v) {
  line(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, (long long)v);
}
}  // namespace

constexpr double Histogram::kBounds[];

void Histogram::observe_us(uint64_t us) noexcept {
  double s = double(us) / 1e6;
  size_t i = 0;
  while (i < kBuckets && s > kBounds[i]) i++;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::render(const char* name, const char* help, std::string* out) const {
  line(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets; i++) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    line(out, "%s_bucket{le=\"%g\"} %llu\n", name, kBounds[i], (unsigned long long)cumulative);
  }
  cumulative += buckets_[kBuckets].load(std::memory_order_relaxed);
  line(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
  line(out, "%s_sum %.6f\n", name, double(sum_us_.load(std::memory_order_relaxed)) / 1e6);
  // _count equals the +Inf bucket by construction of this rendering.
  line(out, "%s_count %llu\n", name, (unsigned long long)cumulative);
}

Registry& get() noexcept { return g_registry; }

void count_request(Endpoint endpoint, int status) noexcept {
  size_t s = kStatusCount - 1;
  for (size_t i = 0; i + 1 < kStatusCount; i++)
    if (kStatuses[i] == status) { s = i; break; }
  g_registry.requests[size_t(endpoint)][s].fetch_add(1, std::memory_order_relaxed);
}

void watch_listener(int fd) noexcept {
  std::lock_guard<std::mutex> lock(g_listeners_mutex);
  try {
    g_listeners.push_back(fd);
  } catch (...) {
  }
}

void unwatch_listener(int fd) noexcept {
  std::lock_guard<std::mutex> lock(g_listeners_mutex);
  auto it = std::find(g_listeners.begin(), g_listeners.end(), fd);
  if (it != g_listeners.end()) g_listeners.erase(it);
}

int64_t accept_queue(int fd) noexcept {
  // For a listening socket Linux reports the accept queue's length in tcpi_unacked.
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.tcpi_state != TCP_LISTEN) return 0;
  return int64_t(ti.tcpi_unacked);
}

std::string render() {
  const Registry& r = g_registry;
  std::string out;
  out.reserve(8192);
  int64_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(g_listeners_mutex);
    for (size_t i = 0; i < g_listeners.size(); i++)
      if (std::find(g_listeners.begin(), g_listeners.begin() + long(i), g_listeners[i]) == g_listeners.begin() + long(i))
        queued += accept_queue(g_listeners[i]);
  }
  gauge(&out, "rt_connections", "Open client connections (all workers; held polls included).",
        r.connections.load(std::memory_order_relaxed));
  gauge(&out, "rt_connections_limit", "--max-connections: open connections beyond which accepting pauses.",
        r.connections_limit.load(std::memory_order_relaxed));
  gauge(&out, "rt_accept_queue", "Connections waiting in the kernel's accept queue (deferred at --max-connections).",
        queued);
  counter(&out, "rt_accept_pauses_total", "Times a worker stopped accepting at its share of --max-connections.",
          r.accept_pauses.load());
  line(&out, "# HELP rt_connections_shed_total Connections closed at --max-connections to make room for waiting "
             "ones, by reason (idle: between requests; slow: a request head/body in progress over 1 s).\n"
             "# TYPE rt_connections_shed_total counter\n"
             "rt_connections_shed_total{reason=\"idle\"} %llu\nrt_connections_shed_total{reason=\"slow\"} %llu\n",
       (unsigned long long)r.shed_idle.load(), (unsigned long long)r.shed_slow.load());
  counter(&out, "rt_request_timeouts_total",
          "Connections closed because a request head/body was not complete within --request-timeout.",
          r.request_timeouts.load());
  gauge(&out, "rt_held_polls", "Long polls held: read from Redis, nothing new yet, waiting for a message.",
        r.held_polls.load(std::memory_order_relaxed));
  gauge(&out, "rt_open_polls", "Open /rt requests (subscribing, reading or held).",
        r.open_polls.load(std::memory_order_relaxed));
  gauge(&out, "rt_subscribed_channels", "Channels subscribed on Redis pub/sub.",
        r.subscribed_channels.load(std::memory_order_relaxed));
  line(&out, "# HELP rt_requests_total HTTP requests answered, by endpoint and status.\n"
             "# TYPE rt_requests_total counter\n");
  for (size_t e = 0; e < kEndpoints; e++)
    for (size_t s = 0; s < kStatusCount; s++) {
      uint64_t v = r.requests[e][s].load(std::memory_order_relaxed);
      if (v == 0) continue;
      if (s + 1 < kStatusCount)
        line(&out, "rt_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", endpoint_name(e), kStatuses[s],
             (unsigned long long)v);
      else
        line(&out, "rt_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n", endpoint_name(e),
             (unsigned long long)v);
    }
  counter(&out, "rt_publishes_total", "Messages stored by POST /publish.", r.publishes.load());
  counter(&out, "rt_deliveries_total", "Messages sent to /rt clients.", r.deliveries.load());
  line(&out, "# HELP rt_resets_total Reset entries sent to /rt clients, by reason (behind: the client was away "
             "too long; lost: its id is not in the channel's history as Redis has it now).\n"
             "# TYPE rt_resets_total counter\n"
             "rt_resets_total{reason=\"behind\"} %llu\nrt_resets_total{reason=\"lost\"} %llu\n",
       (unsigned long long)r.resets_behind.load(), (unsigned long long)r.resets_lost.load());
  counter(&out, "rt_redis_reconnects_total", "Successful Redis reconnects after a lost connection.",
          r.redis_reconnects.load());
  counter(&out, "rt_redis_errors_total", "Requests that failed on Redis (answered 503).", r.redis_errors.load());
  counter(&out, "rt_poll_timeouts_total", "Held polls answered {} at the poll timeout.", r.poll_timeouts.load());
  counter(&out, "rt_client_drops_total", "Open polls whose client closed the connection.", r.client_drops.load());
  counter(&out, "rt_rereads_total", "Held polls re-read from Redis after a pub/sub message that did not continue their chain (its prev not the id before).",
          r.rereads.load());
  counter(&out, "rt_pubsub_messages_total", "Messages received on Redis pub/sub.", r.pubsub_messages.load());
  counter(&out, "rt_invalid_messages_total", "Invalid message JSON found in Redis (skipped).",
          r.invalid_messages.load());
  counter(&out, "rt_backlog_reads_total", "Channel reads from Redis (read.lua) made by polls.", r.backlog_reads.load());
  counter(&out, "rt_mirror_decisions_total",
          "Poll channels decided from the in-process mirror of the channel's head, without Redis.",
          r.mirror_decisions.load());
  counter(&out, "rt_mirror_history_lost_total",
          "Channels whose msg_id went back without a publish (keys deleted or expired, Redis flushed), found by a mirror verification.",
          r.mirror_history_lost.load());
  counter(&out, "rt_redis_master_changes_total",
          "Sentinel: times a worker moved its Redis connections to a new master.", r.redis_master_changes.load());
  counter(&out, "rt_publish_unconfirmed_total",
          "Publishes stored on the master but not confirmed on --publish-min-replicas replicas (answered 503).",
          r.publish_unconfirmed.load());
  counter(&out, "rt_cluster_map_changes_total", "Redis Cluster: new slot maps taken (counted per worker).",
          r.cluster_map_changes.load());
  counter(&out, "rt_cluster_moved_total", "Redis Cluster: MOVED redirects followed.", r.cluster_moved.load());
  counter(&out, "rt_cluster_ask_total", "Redis Cluster: ASK redirects followed (a slot being migrated).",
          r.cluster_ask.load());
  counter(&out, "rt_cluster_sunsubscribed_total",
          "Redis Cluster: sharded channels unsubscribed by Redis (their slot moved); their polls read again.",
          r.cluster_sunsubscribed.load());
  r.rt_latency.render("rt_poll_duration_seconds", "Time from /rt request to answer.", &out);
  r.publish_latency.render("rt_publish_duration_seconds", "Time from POST /publish request to answer.", &out);
  return out;
}

}  // namespace rt::metrics
