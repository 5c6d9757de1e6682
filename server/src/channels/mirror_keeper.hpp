// Keeps the registry's channel mirrors (mirror.hpp says what a mirror is and why it stays
// exact): the I/O around the pure ChannelMirror.
//  - seeds: read.lua with no messages ({N} or {N, {}, newest}, atomically), sent only
//    after the channel's SUBSCRIBE was confirmed; the first one is a gate: the channel's
//    listeners hear on_subscribed when it is back (or failed);
//  - verifications: GET msg_id, so that history lost without a publish is noticed within
//    kTrustMs (mirror_timing.hpp);
//  - every seed and verification reply tells the channel's listeners Redis's head
//    (on_redis_head).
// Every command goes through ChannelCommands, naming its channel (channel_commands.hpp):
// the one seam for routing a channel's commands to the server that owns it.
#pragma once

#include "channel_commands.hpp"
#include "channel_registry.hpp"
#include "protocol/keys.hpp"
#include "scripts.hpp"

namespace rt {

class MirrorKeeper final : public MirrorDriver {
 public:
  // `cmds` (may be NULL: no mirrors) and `scripts` (may be NULL: no seeds, so no mirrors;
  // holds read.lua) must outlive every reply callback pending on them; the keeper must
  // outlive them too (their callbacks reach it: destroy the connections first). Registers
  // itself as `reg`'s mirror driver.
  MirrorKeeper(ChannelRegistry& reg, ChannelCommands* cmds, ScriptSet* scripts, const proto::Keys& keys) noexcept;
  MirrorKeeper(const MirrorKeeper&) = delete;
  MirrorKeeper& operator=(const MirrorKeeper&) = delete;

  // MirrorDriver
  bool first_seed(ChannelEntry& e) noexcept override;
  void on_message(ChannelEntry& e, const proto::Message& msg) noexcept override;
  // Starts a seed (mirror empty) or verification (due) when the decision is unknown.
  ChannelMirror::Decision decide(ChannelEntry& e, uint64_t last, const proto::Message** msg) noexcept override;
  void sweep(uint64_t now) noexcept override;

 private:
  struct Call;
  static void on_seed_reply(redisReply* r, void* priv) noexcept;
  static void on_verify_reply(redisReply* r, void* priv) noexcept;
  bool start_seed(ChannelEntry& e) noexcept;  // false: not sent (the mirror stays empty)
  void start_verify(ChannelEntry& e) noexcept;

  ChannelRegistry& reg_;
  ChannelCommands* cmds_;
  ScriptSet* scripts_;
  proto::Keys keys_;
};

}  // namespace rt
