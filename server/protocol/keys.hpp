// The Redis names of a channel (PROTOCOL.md section 2), the one place that writes them:
//
//     <prefix>{<channel>}:msg_id       the newest id
//     <prefix>{<channel>}:msg_backlog  the backlog (sorted set)
//     <prefix>{<channel>}:pubsub       the pub/sub channel
//
// and the one place that reads a channel back from a pub/sub name. The braces are Redis
// Cluster hash tags: the three names of a channel live on one slot. Header-only: the
// client core includes the protocol module without using these.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace rt::proto {

class Keys {
 public:
  explicit Keys(std::string prefix = "channel:") : prefix_(std::move(prefix)) {}

  const std::string& prefix() const noexcept { return prefix_; }
  std::string msg_id(std::string_view channel) const { return name(channel, kMsgId); }
  std::string backlog(std::string_view channel) const { return name(channel, kBacklog); }
  std::string pubsub(std::string_view channel) const { return name(channel, kPubsub); }

  // The channel whose pubsub() name is `name`; false when `name` is not such a name.
  bool channel_of_pubsub(std::string_view name, std::string* channel) const {
    const std::string_view tail = kPubsub;
    if (name.size() < prefix_.size() + 2 + tail.size() || name.substr(0, prefix_.size()) != prefix_ ||
        name[prefix_.size()] != '{' || name.substr(name.size() - tail.size()) != tail ||
        name[name.size() - tail.size() - 1] != '}')
      return false;
    channel->assign(name.substr(prefix_.size() + 1, name.size() - prefix_.size() - 2 - tail.size()));
    return true;
  }

 private:
  static constexpr const char* kMsgId = ":msg_id";
  static constexpr const char* kBacklog = ":msg_backlog";
  static constexpr const char* kPubsub = ":pubsub";

  std::string name(std::string_view channel, std::string_view suffix) const {
    std::string s;
    s.reserve(prefix_.size() + channel.size() + 2 + suffix.size());
    s += prefix_;
    s += '{';
    s += channel;
    s += '}';
    s += suffix;
    return s;
  }

  std::string prefix_;
};

}  // namespace rt::proto
