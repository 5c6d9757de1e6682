// The channels one worker listens to, and who listens: fan-out of one shared pub/sub
// connection (PubSubConnection) to every open poll, in process.
//
// A channel is reference-counted by its listeners' links: the first link subscribes, later
// ones share the subscription; when the last one leaves, the channel lingers subscribed for
// kLingerMs (a client re-polls right after an answer) and is then unsubscribed (at once
// beyond kMaxIdle lingering channels). A message is parsed and checked once, kept in one
// SharedMessage, and handed to every listener of its channel.
//
// Each subscribed channel carries a ChannelMirror; the registry stores it, a MirrorDriver
// (the mirror keeper) keeps it: seeds it when the channel is confirmed, feeds it every
// message before the listeners see it, decides polls from it, sweeps it. The registry
// forgets a channel (mirror included) when it unsubscribes it or the connection is lost.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "mirror.hpp"
#include "protocol/protocol.hpp"
#include "pubsub_connection.hpp"
#include "util.hpp"

namespace rt {

// A message received on pub/sub, shared by every listener of its channel: one copy per
// worker, not one per poll. Only touched from the worker's own thread.
struct SharedMessage {
  proto::Message msg;
  // The answer of a one-channel poll waiting for exactly this message: every such poll of
  // the worker (a fan-out) sends these bytes. Built by the first of them; the others add it
  // to their answers by reference, without copying it (http_reply's send_json_shared).
  mutable EvbufferPtr single_body;
};
using SharedMessagePtr = std::shared_ptr<const SharedMessage>;

class HubListener;

// One registration of a listener on one channel, owned by the listener and linked into the
// channel's list by the registry: no allocation and no hashing per registration (a poll of
// 200 channels holds 200 of these). Set `listener` and `idx` before add; `chan` is non-NULL
// while registered and NULL again after remove or a lost connection.
struct HubLink {
  HubListener* listener = nullptr;
  uint32_t idx = 0;          // given back in the listener's callbacks
  HubLink* prev = nullptr;
  HubLink* next = nullptr;
  void* chan = nullptr;      // the registry's ChannelEntry (opaque to the listener)
  bool linked() const noexcept { return chan != nullptr; }
};

// A party interested in channels (a poll). Callbacks only record facts and schedule work:
// they must not call add/remove (the registry is walking its lists).
class HubListener : public FenceWaiter {
 public:
  virtual ~HubListener() = default;
  // The channel at index `idx` (as given to add) is now confirmed subscribed by Redis.
  virtual void on_subscribed(size_t idx) noexcept = 0;
  // A valid message arrived on the channel at `idx`. Keep `msg` (a shared reference) if
  // needed beyond the call.
  virtual void on_message(size_t idx, const SharedMessagePtr& msg) noexcept = 0;
  // The subscribe connection was lost: messages may have been missed. The listener is
  // already removed from every channel when this is called (on a Redis Cluster, only from
  // the channel(s) that were lost: the others stay registered until remove()).
  virtual void on_hub_lost() noexcept = 0;
  // Redis said (a mirror seed or verification) that the channel at `idx` has msg_id `n`.
  // A poll held at a last id above `n` must read again: history was lost without a publish
  // (keys deleted or expired, Redis flushed), or the GET ran just before a publish (then
  // the read finds that out: a re-read is always exact).
  virtual void on_redis_head(size_t idx, uint64_t n) noexcept = 0;
  // (on_fence(bool ok), from FenceWaiter: a fence asked for with Hub::fence() passed.)
};

// One channel of the registry. Stays put in memory while it exists (links point to it).
struct ChannelEntry {
  const std::string* name = nullptr;  // the registry's key of this entry
  uint64_t gen = 0;                   // unique per entry: a reply for an older entry of the same name is not for this one
  bool subscribed = false;            // confirmed by Redis
  HubLink* head = nullptr;            // the registered links (listeners), newest first
  uint64_t idle_since_ms = 0;         // when the list became empty (subscribed)
  ChannelMirror mirror;               // kept by the MirrorDriver; valid only while subscribed
  bool seed_gate = false;             // subscribed, first seed in flight: listeners not told yet
  bool empty() const noexcept { return head == nullptr; }
};

// What the registry asks of the mirror keeper (mirror_keeper.hpp).
class MirrorDriver {
 public:
  // `e` was just confirmed subscribed: start its first seed. True when the seed went out:
  // the registry then holds back on_subscribed until ChannelRegistry::release(e).
  virtual bool first_seed(ChannelEntry& e) noexcept = 0;
  // A valid message of `e`, before its listeners see it.
  virtual void on_message(ChannelEntry& e, const proto::Message& msg) noexcept = 0;
  // Decides a poll of subscribed `e` at last id `last` (see Hub::decide).
  virtual ChannelMirror::Decision decide(ChannelEntry& e, uint64_t last, const proto::Message** msg) noexcept = 0;
  // Every kSweepMs: seeds and verifications due.
  virtual void sweep(uint64_t now) noexcept = 0;

 protected:
  ~MirrorDriver() = default;
};

class ChannelRegistry final : public PubSubConnection::Sink {
 public:
  static constexpr size_t kMaxIdle = 10000;  // beyond this many lingering channels, unsubscribe at once

  // Registers itself as `conn`'s sink. `conn` must outlive the registry's use of it.
  ChannelRegistry(event_base* base, PubSubConnection& conn);
  ~ChannelRegistry();
  ChannelRegistry(const ChannelRegistry&) = delete;
  ChannelRegistry& operator=(const ChannelRegistry&) = delete;

  // May be NULL (no mirrors: every decision is unknown). Set before the first add.
  void set_mirror_driver(MirrorDriver* d) noexcept { driver_ = d; }

  enum class AddResult { confirmed, pending, unavailable };
  // Registers `link` (not registered; listener and idx set) for `channel` (a valid channel
  // name). The link must stay put in memory until removed.
  //   confirmed:   already subscribed; no on_subscribed will follow for this add
  //   pending:     on_subscribed(idx) follows once Redis confirms and the channel's
  //                mirror has its first seed (or on_hub_lost)
  //   unavailable: the subscribe connection is down; nothing was registered
  AddResult add(const std::string& channel, HubLink* link);
  // Unregisters `link`. No-op when not registered. Never calls back.
  void remove(HubLink* link) noexcept;
  // The channel name of a registered link ("" when not registered).
  const std::string& channel_of(const HubLink& link) const noexcept;

  // Unknown when `channel` is not subscribed; else the mirror driver's decision.
  ChannelMirror::Decision decide(const std::string& channel, uint64_t last, const proto::Message** msg) noexcept;
  ChannelMirror::Decision decide(const HubLink& link, uint64_t last, const proto::Message** msg) noexcept;

  size_t size() const noexcept { return chans_.size(); }

  // --- for the mirror driver ---------------------------------------------------------------
  // The entry of `channel`, or NULL.
  ChannelEntry* find(const std::string& channel) noexcept;
  // Calls f(entry) for every subscribed entry. f must not add or remove.
  template <class F>
  void each_subscribed(F&& f) {
    for (auto& kv : chans_)
      if (kv.second.subscribed) f(kv.second);
  }
  // Tells every listener of `e` on_redis_head(n).
  void tell_head(ChannelEntry& e, uint64_t n) noexcept;
  // Ends `e`'s seed gate, if any: its listeners hear on_subscribed.
  void release(ChannelEntry& e) noexcept;

  // PubSubConnection::Sink
  void on_subscribed(const std::string& channel) noexcept override;
  void on_message(const std::string& channel, const char* data, size_t len) noexcept override;
  void on_lost() noexcept override;
  // One channel's subscription is gone (Redis Cluster: its slot moved, its master was
  // lost): its listeners hear on_hub_lost, as for a lost connection; the others are not
  // touched.
  void on_channel_lost(const std::string& channel) noexcept override;

 private:
  static void on_sweep(evutil_socket_t, short, void* arg) noexcept;
  void sweep() noexcept;
  void unsubscribe(ChannelEntry& e) noexcept;  // erases e when sent
  void became_idle(ChannelEntry& e) noexcept;

  PubSubConnection& conn_;
  MirrorDriver* driver_ = nullptr;
  std::unordered_map<std::string, ChannelEntry> chans_;
  uint64_t next_gen_ = 0;
  size_t idle_count_ = 0;  // subscribed channels without listeners (lingering)
  EventPtr sweep_ev_;
};

}  // namespace rt
