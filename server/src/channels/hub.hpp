// The pub/sub hub of one worker: ONE Redis pub/sub connection shared by every open poll,
// fanned out in process. A thin facade over three modules, one job each:
//   PubSubConnection (redis/pubsub_connection.hpp)  the wire: SUBSCRIBE bookkeeping, the
//                     hiredis 0.14 workarounds, the sentinel channel, liveness, fences;
//   ChannelRegistry  (channel_registry.hpp)          ref counts, linger, listeners, fan-out;
//   MirrorKeeper     (mirror_keeper.hpp)             seeds and verifications of the mirrors,
//                     every command through ChannelCommands (redis/channel_commands.hpp).
// The standalone constructor builds today's connection (SUBSCRIBE on one link) and command
// routing (one command link); the other takes any implementations (Redis Cluster).
#pragma once

#include <memory>
#include <string>

#include "channel_commands.hpp"
#include "channel_registry.hpp"
#include "mirror_keeper.hpp"
#include "protocol/keys.hpp"
#include "pubsub_connection.hpp"
#include "redis_link.hpp"
#include "scripts.hpp"

namespace rt {

class Hub {
 public:
  // Standalone / Sentinel. `link` is the subscribe connection (the hub becomes its
  // listener); `command_link` (may be NULL: no liveness pings, no fences, no mirrors) a
  // command connection used to PUBLISH to the sentinel and to seed and verify the channel
  // mirrors. Both links must be destroyed before the hub (their pending callbacks reach
  // it). `scripts` (may be NULL: no mirrors) holds read.lua. `tag` makes the sentinel name
  // unique.
  Hub(event_base* base, RedisLink& link, RedisLink* command_link, ScriptSet* scripts, std::string key_prefix,
      uint64_t timeout_ms, const std::string& tag);
  // Any implementations: `conn` the pub/sub wire, `cmds` (may be NULL: no mirrors) the
  // channels' command routing. Whatever their callbacks reach must be destroyed first.
  Hub(event_base* base, std::unique_ptr<PubSubConnection> conn, std::unique_ptr<ChannelCommands> cmds,
      ScriptSet* scripts, std::string key_prefix);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  using AddResult = ChannelRegistry::AddResult;

  // See ChannelRegistry::add / remove / channel_of.
  AddResult add(const std::string& channel, HubLink* link) { return registry_->add(channel, link); }
  void remove(HubLink* link) noexcept { registry_->remove(link); }
  const std::string& channel_of(const HubLink& link) const noexcept { return registry_->channel_of(link); }

  // Decides a poll of `channel` at last id `last` from the channel's mirror (see
  // mirror.hpp): hold, newest (*msg: the message to answer with, valid until the next
  // message or reply is processed) or unknown (read Redis). Unknown for channels that are
  // not subscribed. Starts a seed or verification when the mirror needs one.
  ChannelMirror::Decision decide(const std::string& channel, uint64_t last, const proto::Message** msg) noexcept {
    return registry_->decide(channel, last, msg);
  }
  // The same for a registered link's channel (no lookup by name).
  ChannelMirror::Decision decide(const HubLink& link, uint64_t last, const proto::Message** msg) noexcept {
    return registry_->decide(link, last, msg);
  }

  // Asks for l->on_fence(ok), called once, after every pub/sub message published before
  // this call has reached this hub (see PubSubConnection::fence). Polls use it before
  // answering at once from mirrors while some of their channels look unchanged (a message
  // published just before the poll may still be on its way). Returns false (no callback)
  // when the hub or the command link is down.
  bool fence(HubListener* l) { return conn_->fence(l); }
  // Forgets l's fence, if any. Never calls back.
  void cancel_fence(HubListener* l) noexcept { conn_->cancel_fence(l); }

  bool up() const noexcept { return conn_->up(); }
  // Channels the registry holds (subscribing or subscribed).
  size_t channel_count() const noexcept { return registry_->size(); }

  // Redis pub/sub channel name of `channel`: <prefix>{<channel>}:pubsub
  std::string pubsub_name(const std::string& channel) const { return keys_.pubsub(channel); }

  PubSubConnection& connection() noexcept { return *conn_; }

 private:
  // Destroyed in reverse: the keeper and the registry before what they use.
  proto::Keys keys_;
  std::unique_ptr<PubSubConnection> conn_;
  std::unique_ptr<ChannelCommands> cmds_;
  std::unique_ptr<ChannelRegistry> registry_;
  std::unique_ptr<MirrorKeeper> keeper_;
};

}  // namespace rt
