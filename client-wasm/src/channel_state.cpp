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

void ChannelTable::apply(const proto::ReceivedEntry& entry, Actions* out) {
  auto it = table_.find(entry.channel);
  if (it == table_.end() || !it->second.wanted()) return;
  ChannelInfo& info = it->second;
  if (entry.status == proto::EntryStatus::ok) {
    for (const proto::ReceivedMessage& m : entry.msgs) {
      if (m.id <= info.last_id) continue;  // already delivered: each message reaches the page once
      info.last_id = m.id;
      Action a;
      a.kind = ActionKind::message;
      a.channel = entry.channel;
      a.id = m.id;
      a.payload_json = m.payload_json;
      a.targets = info.targets();
      out->push_back(std::move(a));
    }
    return;
  }
  // reset: the client missed messages (or history was lost); resume from entry.id.
  info.last_id = entry.id;
  Action a;
  a.kind = ActionKind::reset;
  a.channel = entry.channel;
  a.id = entry.id;
  a.targets = info.targets();
  if (!entry.msgs.empty()) {
    a.has_newest = true;
    a.newest_id = entry.msgs.back().id;
    a.payload_json = entry.msgs.back().payload_json;
  }
  out->push_back(std::move(a));
}

std::vector<proto::ChannelPos> ChannelTable::wanted() const {
  std::vector<proto::ChannelPos> v;
  for (const auto& [name, info] : table_)
    if (info.wanted()) v.push_back(proto::ChannelPos{name, info.last_id});
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
