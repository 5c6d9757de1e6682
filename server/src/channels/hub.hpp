// The pub/sub hub of one worker: ONE Redis subscribe connection shared by every open poll,
// fanned out in process. SUBSCRIBE is reference-counted per channel: the first listener
// subscribes, later ones share the subscription; when the last listener leaves, the
// channel lingers subscribed for a short while (a client re-polls right after an answer)
// and is then unsubscribed.
//
// hiredis 0.14 pitfalls handled here:
//  - a SUBSCRIBE and an UNSUBSCRIBE of the same channel are never in flight together (its
//    callback table is keyed by channel: the unsubscribe reply would drop the new callback);
//  - a sentinel channel stays subscribed for the connection's life, so the subscription
//    count never drops to 0 (hiredis would leave subscribe mode and assert on the next
//    subscribe confirmation).
// The sentinel also proves the connection alive: every few seconds a PUBLISH to it goes out
// on the command link, and a pub/sub connection that does not deliver it in time (a silent,
// half-open TCP connection would otherwise hold polls without ever waking them) is dropped.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "mirror.hpp"
#include "protocol/keys.hpp"
#include "redis_link.hpp"
#include "scripts.hpp"
#include "util.hpp"

namespace rt {

// A message received on pub/sub, shared by every listener of its channel: one copy per
// worker, not one per poll. `single_body` caches the whole /rt answer of a single-channel
// poll that gets just this message (the fan-out case), built by the first poll that needs
// it and sent as is by the others. Only touched from the worker's own thread.
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
// channel's list by the hub: no allocation and no hashing per registration (a poll of 200
// channels holds 200 of these). Set `listener` and `idx` before Hub::add; `chan` is
// non-NULL while registered and NULL again after Hub::remove or a lost connection.
struct HubLink {
  HubListener* listener = nullptr;
  uint32_t idx = 0;          // given back in the listener's callbacks
  HubLink* prev = nullptr;
  HubLink* next = nullptr;
  void* chan = nullptr;      // the hub's channel entry (opaque)
  bool linked() const noexcept { return chan != nullptr; }
};

// A party interested in channels (a poll). Callbacks only record facts and schedule work:
// they must not call Hub::add/remove (the hub is walking its lists).
class HubListener {
 public:
  virtual ~HubListener() = default;
  // The channel at index `idx` (as given to add) is now confirmed subscribed by Redis.
  virtual void on_subscribed(size_t idx) noexcept = 0;
  // A valid message arrived on the channel at `idx`. Keep `msg` (a shared reference) if
  // needed beyond the call.
  virtual void on_message(size_t idx, const SharedMessagePtr& msg) noexcept = 0;
  // The subscribe connection was lost: messages may have been missed. The listener is
  // already removed from every channel when this is called.
  virtual void on_hub_lost() noexcept = 0;
  // Redis said (a mirror seed or verification) that the channel at `idx` has msg_id `n`.
  // A poll held at a last id above `n` must read again: history was lost without a publish
  // (keys deleted or expired, Redis flushed), or the GET ran just before a publish (then
  // the read finds that out: a re-read is always exact).
  virtual void on_redis_head(size_t idx, uint64_t n) noexcept = 0;
  // A fence asked for with Hub::fence() passed: every pub/sub message published before the
  // fence was asked for has been delivered (ok), or that cannot be known (ok false: a Redis
  // connection failed; on_hub_lost may follow).
  virtual void on_fence(bool ok) noexcept = 0;
};

class Hub : public RedisLink::Listener {
 public:
  // `link` is the subscribe connection; `pinger` (may be NULL: no liveness pings, no
  // mirrors) a command connection used to PUBLISH to the sentinel and to seed and verify the
  // channel mirrors; it must be destroyed before the hub (its pending callbacks reach the
  // hub). `scripts` (may be NULL: no mirrors) holds read.lua, run on `pinger`. `tag` makes
  // the sentinel name unique.
  Hub(event_base* base, RedisLink& link, RedisLink* pinger, ScriptSet* scripts, std::string key_prefix,
      uint64_t timeout_ms, const std::string& tag);
  ~Hub() override;

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

  // Decides a poll of `channel` at last id `last` from the channel's mirror (see
  // mirror.hpp): hold, newest (*msg: the message to answer with, valid until the next
  // message or reply is processed) or unknown (read Redis). Unknown for channels that are
  // not subscribed. Starts a seed or verification when the mirror needs one.
  ChannelMirror::Decision decide(const std::string& channel, uint64_t last, const proto::Message** msg) noexcept;
  // The same for a registered link's channel (no lookup by name).
  ChannelMirror::Decision decide(const HubLink& link, uint64_t last, const proto::Message** msg) noexcept;

  // Asks for l->on_fence(ok), called once, after every pub/sub message published before
  // this call has reached this hub. How: a sequence number PUBLISHed to the hub's sentinel
  // on the command link, sent from the next loop turn (the fences asked for meanwhile share
  // it); Redis delivers a subscriber's messages in publish order, so when it comes back on
  // pub/sub everything published before it is here. Polls use it before answering at once
  // from mirrors while some of their channels look unchanged (a message published just
  // before the poll may still be on its way). Returns false (no callback) when the hub or
  // the command link is down.
  bool fence(HubListener* l);
  // Forgets l's fence, if any. Never calls back.
  void cancel_fence(HubListener* l) noexcept;

  bool up() const noexcept { return link_.up() && sentinel_confirmed_; }
  size_t channel_count() const noexcept { return chans_.size(); }

  // Redis pub/sub channel name of `channel`: <prefix>{<channel>}:pubsub
  std::string pubsub_name(const std::string& channel) const;

  void on_link_up() noexcept override;
  void on_link_down() noexcept override;

 private:
  enum class SubState { subscribing, subscribed, unsubscribing };
  struct Chan {
    const std::string* name = nullptr;  // the key of this entry in chans_
    SubState state = SubState::subscribing;
    HubLink* head = nullptr;     // the registered links (listeners), newest first
    uint64_t idle_since_ms = 0;  // when the list became empty (state subscribed)
    ChannelMirror mirror;        // valid only while subscribed
    bool seed_gate = false;      // subscribed, first seed in flight: listeners not told yet
    bool empty() const noexcept { return head == nullptr; }
  };
  ChannelMirror::Decision decide(Chan& c, uint64_t last, const proto::Message** msg) noexcept;

  static void on_sub_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept;
  static void on_tick(evutil_socket_t, short, void* arg) noexcept;
  static void on_ping_published(redisReply* reply, void* priv) noexcept;
  static void on_seed_reply(redisReply* reply, void* priv) noexcept;
  static void on_verify_reply(redisReply* reply, void* priv) noexcept;
  static void on_fence_send(evutil_socket_t, short, void* arg) noexcept;
  static void on_fence_published(redisReply* reply, void* priv) noexcept;
  void fences_done(uint64_t up_to_seq, bool ok) noexcept;
  bool start_seed(const std::string& channel, Chan& c) noexcept;  // false: not sent
  void start_verify(const std::string& channel, Chan& c) noexcept;
  void maintain_mirrors(uint64_t now) noexcept;
  void handle_reply(struct redisReply* r) noexcept;
  bool send(const char* verb, const std::string& channel) noexcept;
  void became_idle(Chan& c) noexcept;
  void set_state(Chan& c, SubState s) noexcept;
  void tick() noexcept;

  RedisLink& link_;
  RedisLink* pinger_;
  ScriptSet* scripts_;
  uint64_t last_ping_ms_ = 0;      // when the last ping was published
  uint64_t ping_awaited_ms_ = 0;   // when Redis ran the PUBLISH of a ping not yet received (0: none)
  uint64_t last_rx_ms_ = 0;        // when the pub/sub connection last delivered anything
  bool ping_in_flight_ = false;
  uint64_t ping_seq_ = 0;          // sequence number of the last ping sent (its payload)
  uint64_t ping_seen_ = 0;         // highest ping sequence number received on pub/sub
  uint64_t epoch_ = 0;             // bumped whenever the pub/sub connection goes up or down
  uint64_t ping_epoch_ = 0;        // epoch_ when the ping in flight was sent
  proto::Keys keys_;
  std::string sentinel_;  // pub/sub name of the sentinel channel (not a valid channel name)
  uint64_t timeout_ms_;
  bool sentinel_confirmed_ = false;
  bool link_down_pending_ = false;  // a send failed: drop the connection at the next tick
  std::unordered_map<std::string, Chan> chans_;
  std::deque<uint64_t> in_flight_;  // send times of (UN)SUBSCRIBEs awaiting their reply
  size_t idle_count_ = 0;      // subscribed channels without listeners (lingering)
  unsigned sweep_tick_ = 0;
  EventPtr tick_ev_;
  // Fences: listeners waiting for the fence sequence number they need (see fence()).
  std::vector<std::pair<HubListener*, uint64_t>> fence_waiters_;
  uint64_t fence_seq_ = 0;          // the last fence sequence number handed out
  bool fence_scheduled_ = false;    // fence_seq_ is not PUBLISHed yet (on_fence_send will)
  EventPtr fence_ev_;
};

}  // namespace rt
