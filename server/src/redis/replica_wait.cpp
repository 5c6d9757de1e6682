#include "replica_wait.hpp"

#include <string>

#include "log.hpp"

namespace rt {

ReplicaWait::ReplicaWait(RedisLink& link, ScriptSet& scripts, uint32_t replicas, uint64_t timeout_ms)
    : link_(link), scripts_(scripts), replicas_(replicas), timeout_ms_(timeout_ms) {}

void ReplicaWait::fail_all(std::vector<Waiter>& ws) noexcept {
  std::vector<Waiter> done;
  done.swap(ws);
  for (const Waiter& w : done) w.fn(w.priv, -1);
}

void ReplicaWait::after_write(DoneFn fn, void* priv) noexcept {
  try {
    queued_.push_back(Waiter{fn, priv});
  } catch (...) {
    fn(priv, -1);
    return;
  }
  if (!waiting_) send_wait();
}

void ReplicaWait::send_wait() noexcept {
  in_flight_.swap(queued_);  // in_flight_ was empty
  std::string n = std::to_string(replicas_), t = std::to_string(timeout_ms_);
  const char* argv[] = {"WAIT", n.c_str(), t.c_str()};
  size_t lens[] = {4, n.size(), t.size()};
  if (link_.command(on_wait_reply, this, 3, argv, lens)) {
    waiting_ = true;
    return;
  }
  // The connection of those writes is gone: nothing can confirm them any more.
  fail_all(in_flight_);
}

void ReplicaWait::on_wait_reply(redisReply* r, void* priv) noexcept {
  auto* self = static_cast<ReplicaWait*>(priv);
  self->waiting_ = false;
  long long confirmed = r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r != nullptr && r->type == REDIS_REPLY_ERROR)
    RT_LOG(warn, "WAIT failed").kv("link", self->link_.name()).kv("error", std::string(r->str, r->len));
  std::vector<Waiter> done;
  done.swap(self->in_flight_);
  for (const Waiter& w : done) w.fn(w.priv, confirmed);
  if (self->queued_.empty()) return;
  // NULL: the connection is gone, and with it any chance to confirm the writes queued on it.
  if (r == nullptr) fail_all(self->queued_);
  else self->send_wait();
}

}  // namespace rt
