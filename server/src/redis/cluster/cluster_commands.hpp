// ChannelCommands on a Redis Cluster: every call goes to the master of the channel's slot
// (the hash tag {<channel>} of its keys), through the worker's ClusterLinks (MOVED, ASK,
// TRYAGAIN and a missing master handled there).
#pragma once

#include "channel_commands.hpp"
#include "cluster_links.hpp"

namespace rt {

class ClusterCommands final : public ChannelCommands {
 public:
  explicit ClusterCommands(ClusterLinks& links) noexcept : links_(links) {}
  bool up_for(const std::string& channel) const noexcept override {
    return const_cast<ClusterLinks&>(links_).link_for_slot(slot(channel)) != nullptr;
  }
  bool command_for(const std::string& channel, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                   const size_t* lens) noexcept override {
    return links_.command(slot(channel), fn, priv, argc, argv, lens);
  }
  bool script_for(const std::string&, Script& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept override {
    return links_.run_script(script, keys, args, fn, priv);
  }

 private:
  // The slot of the channel's keys: the channel name is their hash tag (a valid name holds
  // no braces, so it is the whole tag).
  static uint16_t slot(const std::string& channel) noexcept {
    return cluster::crc16(channel.data(), channel.size()) & (cluster::kSlots - 1);
  }
  ClusterLinks& links_;
};

}  // namespace rt
