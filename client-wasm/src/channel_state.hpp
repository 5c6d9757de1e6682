// Per-channel client state: the last id seen, who wants the channel, and the dedupe rule of
// PROTOCOL.md section 6. One table per client; entries are never forgotten while the page
// lives (a channel dropped by scrolling and picked again resumes from its last id), so the
// table grows with the number of distinct channels the page ever named, which the page
// bounds.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "actions.hpp"
#include "protocol.hpp"

namespace rt::client {

struct ChannelInfo {
  uint64_t last_id = 0;  // newest id handed to the page (or the id of the latest reset)
  int subscribers = 0;   // explicit subscriptions (ClientCore::subscribe minus unsubscribe)
  bool scroll = false;   // picked by the scroll selector
  // subscribe(from: 'now') on a channel not polled yet: the next poll asks with the largest
  // id, which the server answers at once with a reset to its newest id N (L > N); that
  // reset only sets the position and is not shown to the page.
  bool sync_now = false;
  uint64_t poll_from() const noexcept { return sync_now ? proto::kMaxId : last_id; }
  bool wanted() const noexcept { return subscribers > 0 || scroll; }
  uint8_t targets() const noexcept {
    return static_cast<uint8_t>((subscribers > 0 ? kToSubscribers : 0) | (scroll ? kToScroll : 0));
  }
};

class ChannelTable {
 public:
  // Returns the entry for `name`, creating it (last id 0, unwanted) when absent.
  // The caller validated the name.
  ChannelInfo& get(std::string_view name);
  const ChannelInfo* find(std::string_view name) const;

  // Raises the last id to `id` when it is higher: the page says it has seen up to `id`
  // (from its own rendering); a higher id the client already delivered wins.
  void note_seen(std::string_view name, uint64_t id);

  // Applies one response entry for a wanted channel, appending to *out what the page must
  // see: on "ok", every message with id > last id, in order (older or repeated ones are
  // dropped), last id advancing with each, as long as the chain holds (the first new
  // message's prev is the last id, each later one's the id before it); at a break, a reset
  // with reason `lost` to the list's newest message (PROTOCOL.md section 6: never pass a gap
  // on, whatever the server did). On "reset", last id := entry.id and one reset action with
  // the entry's reason, carrying the newest message (or none). Entries of unwanted channels
  // are ignored entirely (their last id must not advance past messages the page never got).
  void apply(const proto::ReceivedEntry& entry, Actions* out);

  // Wanted channels with their last ids, in name order (deterministic poll plans).
  std::vector<proto::ChannelPos> wanted() const;

  // Names with the scroll flag, in name order.
  std::vector<std::string> scroll_names() const;

  // Clears every scroll flag; returns the names that had one, in name order.
  std::vector<std::string> clear_scroll();

  size_t size() const noexcept { return table_.size(); }

 private:
  std::map<std::string, ChannelInfo, std::less<>> table_;
};

}  // namespace rt::client
