#include "hub.hpp"

namespace rt {

Hub::Hub(event_base* base, RedisLink& link, RedisLink* command_link, ScriptSet* scripts, std::string key_prefix,
         uint64_t timeout_ms, const std::string& tag)
    : keys_(std::move(key_prefix)) {
  conn_ = std::make_unique<StandalonePubSub>(base, link, command_link, keys_, timeout_ms, tag);
  if (command_link) cmds_ = std::make_unique<LinkCommands>(*command_link);
  registry_ = std::make_unique<ChannelRegistry>(base, *conn_);
  keeper_ = std::make_unique<MirrorKeeper>(*registry_, cmds_.get(), scripts, keys_);
}

Hub::Hub(event_base* base, std::unique_ptr<PubSubConnection> conn, std::unique_ptr<ChannelCommands> cmds,
         ScriptSet* scripts, std::string key_prefix)
    : keys_(std::move(key_prefix)), conn_(std::move(conn)), cmds_(std::move(cmds)) {
  registry_ = std::make_unique<ChannelRegistry>(base, *conn_);
  keeper_ = std::make_unique<MirrorKeeper>(*registry_, cmds_.get(), scripts, keys_);
}

Hub::~Hub() {
  // The registry reports to nobody once gone: no sink for the connection's last callbacks.
  conn_->set_sink(nullptr);
}

}  // namespace rt
