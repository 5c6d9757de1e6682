// The one way to send a Redis command about ONE channel's keys (its msg_id, its backlog):
// through a ChannelCommands, naming the channel. The implementation picks the connection
// that serves the channel. Standalone and Sentinel mode have one command link for
// everything (LinkCommands below); in Redis Cluster mode each channel's keys live on the
// master owning the slot of its hash tag ({<channel>}, protocol/keys.hpp), and an
// implementation routes each call there.
//
// Contract, for every implementation:
//  - up_for(channel): true when a command for `channel` can be sent now. A caller may skip
//    work (no seed, no verification) when it is false.
//  - command_for / script_for: return false when the command could not be sent (the
//    callback is then never called); otherwise `fn` is called exactly once, later, from the
//    event loop, with the reply (owned by hiredis, valid only during the call) or NULL when
//    the connection failed, timed out or is being destroyed. Never calls `fn` from inside
//    command_for / script_for.
//  - Every key named in argv / `keys` belongs to `channel` (same hash tag): one call never
//    spans channels, so it always has exactly one owner.
//  - An implementation outlives every caller that has a callback pending on it, or calls
//    every pending callback with NULL when it goes (RedisLink does).
#pragma once

#include <string>
#include <vector>

#include "redis_link.hpp"
#include "scripts.hpp"

namespace rt {

class ChannelCommands {
 public:
  virtual ~ChannelCommands() = default;
  virtual bool up_for(const std::string& channel) const noexcept = 0;
  virtual bool command_for(const std::string& channel, RedisLink::ReplyFn fn, void* priv, int argc,
                           const char** argv, const size_t* lens) noexcept = 0;
  // Runs `script` (EVALSHA, EVAL on NOSCRIPT: see run_script) with `keys` and `args`.
  virtual bool script_for(const std::string& channel, Script& script, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept = 0;
};

// Standalone / Sentinel: every channel on the worker's one command link. The link must
// outlive this object's users' pending callbacks (RedisLink calls them with NULL when it goes).
class LinkCommands final : public ChannelCommands {
 public:
  explicit LinkCommands(RedisLink& link) noexcept : link_(link) {}
  bool up_for(const std::string&) const noexcept override { return link_.up(); }
  bool command_for(const std::string&, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                   const size_t* lens) noexcept override {
    return link_.command(fn, priv, argc, argv, lens);
  }
  bool script_for(const std::string&, Script& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept override {
    return run_script(link_, script, keys, args, fn, priv);
  }

 private:
  RedisLink& link_;
};

}  // namespace rt
