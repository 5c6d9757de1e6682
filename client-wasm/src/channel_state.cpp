#include "channel_state.hpp"

namespace rt::client {

ChannelInfo& ChannelTable::get(std::string_view name) {
  auto it = table_.find(name);
  if (it == table_.end()) it = table_.emplace(std::string(name), ChannelInfo{}).first;
  return it->second;
}

const ChannelInfo* ChannelTable::find(std::string_view name) const {
  auto it = table_.find(name);
  return it == table_.end() ? nullptr : &it->second;
}

void ChannelTable::note_seen(std::string_view name, uint64_t id) {
  ChannelInfo& info = get(name);
  if (id > info.last_id) info.last_id = id;
}

namespace {

// The reset action for `channel`: resume from `id`, newest message `newest` (may be null).
Action reset_action(const std::string& channel, uint64_t id, proto::ResetReason reason,
                    const proto::ReceivedMessage* newest, uint8_t targets) {
  Action a;
  a.kind = ActionKind::reset;
  a.channel = channel;
  a.id = id;
  a.reason = reason;
  a.targets = targets;
  if (newest) {
    a.has_newest = true;
    a.newest_id = newest->id;
    a.payload_json = newest->payload_json;
    a.payload_ref = newest->payload_ref;
  }
  return a;
}

}  // namespace

void ChannelTable::apply(const proto::ReceivedEntry& entry, Actions* out) {
  auto it = table_.find(entry.channel);
  if (it == table_.end() || !it->second.wanted()) return;
  ChannelInfo& info = it->second;
  if (info.sync_now) {  // the answer to a 'now' poll: a position, nothing for the page
    info.sync_now = false;
    if (entry.status == proto::EntryStatus::reset) info.last_id = entry.id;
    else if (!entry.msgs.empty()) info.last_id = entry.msgs.back().id;
    return;
  }
  if (entry.status == proto::EntryStatus::ok) {
    for (const proto::ReceivedMessage& m : entry.msgs) {
      if (m.id <= info.last_id) continue;  // already delivered: each message reaches the page once
      if (m.prev != info.last_id) {
        // A gap between what the page has and this message: handled like a lost reset.
        const proto::ReceivedMessage& newest = entry.msgs.back();
        info.last_id = newest.id;
        out->push_back(reset_action(entry.channel, newest.id, proto::ResetReason::lost, &newest, info.targets()));
        return;
      }
      info.last_id = m.id;
      Action a;
      a.kind = ActionKind::message;
      a.channel = entry.channel;
      a.id = m.id;
      a.payload_json = m.payload_json;
      a.payload_ref = m.payload_ref;
      a.targets = info.targets();
      out->push_back(std::move(a));
    }
    return;
  }
  // reset: the client missed messages (or history was lost); resume from entry.id.
  info.last_id = entry.id;
  out->push_back(reset_action(entry.channel, entry.id, entry.reason,
                              entry.msgs.empty() ? nullptr : &entry.msgs.back(), info.targets()));
}

std::vector<proto::ChannelPos> ChannelTable::wanted() const {
  std::vector<proto::ChannelPos> v;
  for (const auto& [name, info] : table_)
    if (info.wanted()) v.push_back(proto::ChannelPos{name, info.poll_from()});
  return v;
}

std::vector<std::string> ChannelTable::scroll_names() const {
  std::vector<std::string> names;
  for (const auto& [name, info] : table_)
    if (info.scroll) names.push_back(name);
  return names;
}

std::vector<std::string> ChannelTable::clear_scroll() {
  std::vector<std::string> had;
  for (auto& [name, info] : table_)
    if (info.scroll) {
      info.scroll = false;
      had.push_back(name);
    }
  return had;
}

}  // namespace rt::client
