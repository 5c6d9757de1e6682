// Process-wide metrics (shared by all worker threads; relaxed atomics), rendered in the
// Prometheus text format for GET /metrics.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rt::metrics {

enum class Endpoint { rt = 0, publish, healthz, metrics, web, other };
constexpr size_t kEndpoints = 6;

// Status codes tracked individually; anything else is counted under "other".
constexpr int kStatuses[] = {200, 204, 400, 401, 403, 404, 405, 413, 414, 431, 500, 501, 503};
constexpr size_t kStatusCount = sizeof(kStatuses) / sizeof(kStatuses[0]) + 1;

// A latency histogram in seconds with fixed buckets.
class Histogram {
 public:
  static constexpr double kBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,   0.5,   1,      2.5,   5,    10,    30,    60};
  static constexpr size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);

  void observe_us(uint64_t us) noexcept;
  // Appends the _bucket/_sum/_count lines of metric `name` (with HELP/TYPE) to *out.
  void render(const char* name, const char* help, std::string* out) const;

 private:
  std::atomic<uint64_t> buckets_[kBuckets + 1] = {};  // last one: +Inf
  std::atomic<uint64_t> sum_us_{0};
  std::atomic<uint64_t> count_{0};
};

struct Registry {
  std::atomic<int64_t> held_polls{0};           // /rt requests held: read, nothing new yet, waiting
  std::atomic<int64_t> open_polls{0};           // open /rt requests (subscribing, reading or held)
  std::atomic<int64_t> subscribed_channels{0};  // channels SUBSCRIBEd on Redis (all workers)
  std::atomic<int64_t> connections{0};          // open client connections (all workers)
  std::atomic<int64_t> connections_limit{0};    // --max-connections (resolved)
  std::atomic<uint64_t> accept_pauses{0};       // a worker stopped accepting at its share of the bound
  std::atomic<uint64_t> shed_idle{0};           // connections closed at the bound: idle between requests
  std::atomic<uint64_t> shed_slow{0};           // connections closed at the bound: a request head/body too slow
  std::atomic<uint64_t> request_timeouts{0};    // connections closed at --request-timeout (request not complete)
  std::atomic<uint64_t> requests[kEndpoints][kStatusCount] = {};
  std::atomic<uint64_t> publishes{0};           // messages stored by POST /publish
  std::atomic<uint64_t> deliveries{0};          // messages sent to /rt clients (ok and reset entries)
  std::atomic<uint64_t> resets_behind{0};       // reset entries sent, reason "behind"
  std::atomic<uint64_t> resets_lost{0};         // reset entries sent, reason "lost"
  std::atomic<uint64_t> redis_reconnects{0};    // successful reconnects after a lost connection
  std::atomic<uint64_t> redis_errors{0};        // Redis failures seen by requests (answered 503)
  std::atomic<uint64_t> poll_timeouts{0};       // held polls answered {} at the poll timeout
  std::atomic<uint64_t> client_drops{0};        // held polls whose client went away
  std::atomic<uint64_t> rereads{0};             // held polls re-read after a gap on pub/sub
  std::atomic<uint64_t> pubsub_messages{0};     // messages received on pub/sub
  std::atomic<uint64_t> invalid_messages{0};    // invalid message JSON found in Redis (skipped)
  std::atomic<uint64_t> backlog_reads{0};       // channel reads (read.lua) sent by polls
  std::atomic<uint64_t> mirror_decisions{0};    // poll channels decided from the in-process mirror
  std::atomic<uint64_t> mirror_history_lost{0}; // msg_id found gone back by a mirror verification
  std::atomic<uint64_t> redis_master_changes{0}; // Sentinel: the master moved (per worker)
  std::atomic<uint64_t> publish_unconfirmed{0};  // publishes stored but not confirmed on the replicas
  // Redis Cluster (redis+cluster://)
  std::atomic<uint64_t> cluster_map_changes{0};  // new slot maps taken (per worker)
  std::atomic<uint64_t> cluster_moved{0};        // MOVED redirects followed
  std::atomic<uint64_t> cluster_ask{0};          // ASK redirects followed
  std::atomic<uint64_t> cluster_sunsubscribed{0}; // sharded channels unsubscribed by the server (slot moved)
  Histogram rt_latency;                         // /rt: request arrival to answer
  Histogram publish_latency;                    // /publish: request arrival to answer
};

Registry& get() noexcept;

void count_request(Endpoint endpoint, int status) noexcept;

// Listening sockets whose kernel accept queue /metrics reports (rt_accept_queue). A socket
// shared by several workers is watched once per worker; unwatch before closing it.
void watch_listener(int fd) noexcept;
void unwatch_listener(int fd) noexcept;
// Connections waiting in the accept queue of socket `fd` (Linux TCP_INFO of a listening
// socket); 0 when it cannot be read.
int64_t accept_queue(int fd) noexcept;

// The whole /metrics body.
std::string render();

}  // namespace rt::metrics
