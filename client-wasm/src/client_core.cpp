#include "client_core.hpp"

#include <algorithm>

namespace rt::client {

const char* conn_state_name(ConnState s) noexcept {
  switch (s) {
    case ConnState::connecting: return "connecting";
    case ConnState::live: return "live";
    case ConnState::retrying: return "retrying";
    case ConnState::offline: return "offline";
    case ConnState::error: return "error";
    case ConnState::disconnected: return "disconnected";
  }
  return "connecting";
}

bool validate_config(const Config& cfg, std::string* detail) {
  auto fail = [&](const char* msg) {
    *detail = msg;
    return false;
  };
  const std::string& base = cfg.url.base_url;
  if (base.find_first_of("?#") != std::string::npos) return fail("baseUrl must not contain '?' or '#'");
  if (!base.empty() && base.back() == '/') return fail("baseUrl must not end with '/'");
  if (cfg.url.path.empty() || cfg.url.path[0] != '/' ||
      cfg.url.path.find_first_of("?#") != std::string::npos)
    return fail("path must start with '/' and contain no '?' or '#'");
  if (cfg.url_budget < min_url_budget(cfg.url))
    return fail("urlBudget is too small for one channel of 128 bytes with its base URL");
  if (cfg.max_channels_per_poll < 1) return fail("maxChannelsPerPoll must be at least 1");
  if (cfg.poll_timeout_ms < 1) return fail("pollTimeoutMs must be positive");
  if (cfg.deadline_margin_ms < 0) return fail("deadlineMarginMs must not be negative");
  if (cfg.probe_after_ms < 0) return fail("probeAfterMs must not be negative");
  if (!cfg.probe_path.empty() &&
      (cfg.probe_path[0] != '/' || cfg.probe_path.find_first_of("?#") != std::string::npos))
    return fail("probePath must be empty or start with '/' and contain no '?' or '#'");
  const BackoffConfig& b = cfg.backoff;
  if (b.first_retry_max_ms < 0) return fail("firstRetryMaxMs must not be negative");
  if (b.base_ms < 1) return fail("backoffBaseMs must be positive");
  if (b.cap_ms < b.base_ms) return fail("backoffCapMs must be at least backoffBaseMs");
  if (b.max_retry_after_ms < 0) return fail("maxRetryAfterMs must not be negative");
  if (cfg.settle_ms < 0) return fail("settleMs must not be negative");
  if (cfg.closest < 1) return fail("closest must be at least 1");
  return true;
}

ClientCore::ClientCore(Config cfg) : cfg_(std::move(cfg)), rng_(cfg_.seed) {}

// ---------------------------------------------------------------- channel set

void ClientCore::mark_dirty() { plan_dirty_ = true; }

bool ClientCore::subscribe(Millis now, std::string_view channel, uint64_t last_id, bool from_now,
                           Actions* out) {
  if (closed_ || !proto::valid_channel_name(channel) || last_id > proto::kMaxId) return false;
  ChannelInfo& info = channels_.get(channel);
  if (from_now) {
    if (!info.wanted()) info.sync_now = true;  // a polled channel's position is already current
  } else {
    info.sync_now = false;  // an explicit position wins over a pending 'now'
    if (last_id > info.last_id) info.last_id = last_id;
  }
  if (info.subscribers++ == 0 && !info.scroll) mark_dirty();
  finish(now, out);
  return true;
}

bool ClientCore::unsubscribe(Millis now, std::string_view channel, Actions* out) {
  if (closed_) return false;
  const ChannelInfo* found = channels_.find(channel);
  if (!found || found->subscribers == 0) return false;
  ChannelInfo& info = channels_.get(channel);
  if (--info.subscribers == 0 && !info.scroll) mark_dirty();
  finish(now, out);
  return true;
}

size_t ClientCore::scroll_begin(Millis now, const std::vector<ScrollItem>& items, Millis settle_ms,
                                size_t closest, Actions* out) {
  if (closed_) return 0;
  scroll_settle_ms_ = settle_ms >= 0 ? settle_ms : cfg_.settle_ms;
  scroll_closest_ = closest > 0 ? closest : cfg_.closest;
  channels_.clear_scroll();
  size_t skipped = 0;
  for (const ScrollItem& item : items) {
    if (!proto::valid_channel_name(item.channel) || item.last_id > proto::kMaxId) {
      skipped++;
      continue;
    }
    ChannelInfo& info = channels_.get(item.channel);
    if (item.last_id > info.last_id) info.last_id = item.last_id;
    info.scroll = true;
  }
  scroll_active_ = true;
  settle_at_ = -1;
  mark_dirty();
  finish(now, out);
  return skipped;
}

void ClientCore::scroll_moved(Millis now, Actions* out) {
  if (closed_ || !scroll_active_) return;
  settle_at_ = now + scroll_settle_ms_;
  finish(now, out);
}

size_t ClientCore::scroll_measured(Millis now, const std::vector<ScrollItem>& items,
                                   const Rect& viewport, Actions* out) {
  if (closed_ || !scroll_active_) return 0;
  std::vector<ScrollItem> valid;
  valid.reserve(items.size());
  size_t skipped = 0;
  for (const ScrollItem& item : items) {
    if (!proto::valid_channel_name(item.channel) || item.last_id > proto::kMaxId) {
      skipped++;
      continue;
    }
    channels_.note_seen(item.channel, item.last_id);
    valid.push_back(item);
  }
  std::vector<std::string> before = channels_.clear_scroll();  // in name order
  for (const std::string& name : select_closest(valid, viewport, scroll_closest_))
    channels_.get(name).scroll = true;
  if (channels_.scroll_names() != before) mark_dirty();
  finish(now, out);
  return skipped;
}

void ClientCore::scroll_end(Millis now, Actions* out) {
  if (closed_ || !scroll_active_) return;
  scroll_active_ = false;
  settle_at_ = -1;
  if (!channels_.clear_scroll().empty()) mark_dirty();
  finish(now, out);
}

// ---------------------------------------------------------------- polls

ClientCore::Slot* ClientCore::slot_of(uint64_t poll_id) {
  if (poll_id == 0) return nullptr;
  for (Slot& s : slots_)
    if (s.poll_id == poll_id) return &s;
  return nullptr;
}

// Starts the next request of `slot` with the current last ids. Returns false (and starts
// nothing) when the URL no longer fits the budget (ids grew digits): the caller replans.
bool ClientCore::start_slot(Millis now, Slot& slot, Actions* out) {
  std::vector<proto::ChannelPos> group;
  group.reserve(slot.channels.size());
  for (const std::string& name : slot.channels) {
    const ChannelInfo* info = channels_.find(name);
    group.push_back(proto::ChannelPos{name, info ? info->poll_from() : 0});
  }
  std::string url = build_poll_url(cfg_.url, group, rng_.next());
  if (url.size() > cfg_.url_budget && slot.channels.size() > 1) return false;
  slot.poll_id = next_poll_id_++;
  slot.url = std::move(url);
  slot.deadline = now + cfg_.poll_timeout_ms + cfg_.deadline_margin_ms;
  slot.started_at = now;
  slot.retry_at = -1;
  slot.probed = false;
  Action a;
  a.kind = ActionKind::start_poll;
  a.poll_id = slot.poll_id;
  a.url = slot.url;
  out->push_back(std::move(a));
  return true;
}

void ClientCore::abort_slot(Slot& slot, Actions* out) {
  if (slot.poll_id == 0) return;
  Action a;
  a.kind = ActionKind::abort_poll;
  a.poll_id = slot.poll_id;
  out->push_back(std::move(a));
  slot.poll_id = 0;
  slot.url.clear();
  slot.deadline = -1;
}

void ClientCore::fail_slot(Millis now, Slot& slot, ConnState state, int http_status,
                           std::string reason, Millis retry_after_ms, bool skip_first_step) {
  Millis delay = slot.backoff.next_delay(cfg_.backoff, rng_, retry_after_ms, skip_first_step);
  slot.poll_id = 0;
  slot.url.clear();
  slot.deadline = -1;
  slot.retry_at = now + delay;
  slot.failing = true;
  slot.confirmed = false;
  slot.failure = Status{state, slot.backoff.failures(), delay, http_status, std::move(reason)};
}

// Recomputes the poll groups from the wanted channels. When they are unchanged (and not
// `force`d) nothing happens. Otherwise every running poll is aborted and the new groups
// start at once, carrying every last id, unless the old polls were backing off: then the
// new ones inherit the longest failure streak and wait until the latest pending retry, so
// that channel changes never turn a backoff into a spin against a failing server.
void ClientCore::replan(Millis now, bool force, Actions* out) {
  plan_dirty_ = false;
  auto groups = split_channels(channels_.wanted(), cfg_.url, cfg_.url_budget,
                               cfg_.max_channels_per_poll);
  if (!force && groups.size() == slots_.size()) {
    bool same = true;
    for (size_t i = 0; same && i < groups.size(); i++) {
      const auto& g = groups[i];
      const auto& s = slots_[i].channels;
      same = g.size() == s.size() &&
             std::equal(g.begin(), g.end(), s.begin(),
                        [](const proto::ChannelPos& p, const std::string& n) { return p.channel == n; });
    }
    if (same) return;
  }
  int carry_failures = 0;
  Millis carry_retry_at = -1;
  const Slot* carry = nullptr;
  const bool confirmed = all_confirmed();  // the link was proven: new groups need no probe
  for (Slot& s : slots_) {
    if (s.failing) {
      if (!carry || s.backoff.failures() > carry_failures) carry = &s;
      carry_failures = std::max(carry_failures, s.backoff.failures());
      if (s.poll_id == 0) carry_retry_at = std::max(carry_retry_at, s.retry_at);
    }
    abort_slot(s, out);
  }
  std::vector<Slot> fresh(groups.size());
  for (size_t i = 0; i < groups.size(); i++) {
    Slot& n = fresh[i];
    for (auto& pos : groups[i]) n.channels.push_back(std::move(pos.channel));
    if (carry) {
      n.failing = true;
      n.failure = carry->failure;
      n.backoff.set_failures(carry_failures);
      if (carry_retry_at > now) n.retry_at = carry_retry_at;
    } else {
      n.confirmed = confirmed;
    }
  }
  slots_ = std::move(fresh);
}

// Applies a pending plan change and starts every slot that is neither running nor waiting.
void ClientCore::pump(Millis now, Actions* out) {
  if (plan_dirty_) replan(now, false, out);
  if (!online_ || paused_) return;
  bool overflow = false;
  for (Slot& s : slots_)
    if (s.poll_id == 0 && s.retry_at < 0 && !start_slot(now, s, out)) overflow = true;
  if (overflow) {
    replan(now, true, out);
    for (Slot& s : slots_)
      if (s.poll_id == 0 && s.retry_at < 0) start_slot(now, s, out);
  }
}

void ClientCore::on_answer(Millis now, uint64_t poll_id, const std::vector<proto::ReceivedEntry>* entries,
                           std::string_view malformed, Millis retry_after_ms, Actions* out) {
  if (closed_) return;
  Slot* slot = slot_of(poll_id);
  if (!slot) return;  // aborted or unknown: its answer no longer matters
  Actions page;
  if (entries) {
    for (const proto::ReceivedEntry& e : *entries)
      if (std::find(slot->channels.begin(), slot->channels.end(), e.channel) != slot->channels.end())
        channels_.apply(e, &page);
    slot->poll_id = 0;
    slot->url.clear();
    slot->deadline = -1;
    slot->retry_at = -1;
    slot->failing = false;
    slot->confirmed = true;
    slot->backoff.reset();
  } else {
    fail_slot(now, *slot, ConnState::retrying, 200, "malformed response: " + std::string(malformed),
              retry_after_ms, false);
  }
  pump(now, out);
  finish(now, out);
  for (Action& a : page) out->push_back(std::move(a));
}

void ClientCore::on_response(Millis now, uint64_t poll_id, int http_status, std::string_view body,
                             Millis retry_after_ms, Actions* out) {
  if (closed_) return;
  Slot* slot = slot_of(poll_id);
  if (!slot) return;
  if (http_status >= 400 && http_status < 500 && http_status != 408 && http_status != 429) {
    // The request itself is wrong (a page or configuration bug): say so, never spin.
    std::string reason = "HTTP " + std::to_string(http_status);
    if (!body.empty()) reason += ": " + std::string(body.substr(0, 200));
    fail_slot(now, *slot, ConnState::error, http_status, std::move(reason), retry_after_ms, true);
  } else {
    fail_slot(now, *slot, ConnState::retrying, http_status, "HTTP " + std::to_string(http_status),
              retry_after_ms, false);
  }
  pump(now, out);
  finish(now, out);
}

void ClientCore::on_network_error(Millis now, uint64_t poll_id, std::string_view detail, Actions* out) {
  if (closed_) return;
  Slot* slot = slot_of(poll_id);
  if (!slot) return;
  fail_slot(now, *slot, ConnState::retrying, 0, "network error: " + std::string(detail.substr(0, 200)),
            -1, false);
  pump(now, out);
  finish(now, out);
}

void ClientCore::on_timer(Millis now, Actions* out) {
  if (closed_) return;
  armed_at_ = -1;  // the host timer fired: nothing is armed until finish() says so
  if (plan_dirty_) replan(now, false, out);
  for (Slot& s : slots_) {
    if (s.poll_id != 0 && s.deadline <= now) {
      abort_slot(s, out);
      fail_slot(now, s, ConnState::retrying, 0, "no answer before the deadline", -1, false);
    }
  }
  // Polls unanswered for probe_after_ms and not confirmed yet: one probe for all of them.
  if (probe_id_ == 0 && !cfg_.probe_path.empty()) {
    bool due = false;
    for (const Slot& s : slots_)
      if (s.poll_id != 0 && !s.confirmed && !s.probed && s.started_at + cfg_.probe_after_ms <= now) due = true;
    if (due) {
      for (Slot& s : slots_)
        if (s.poll_id != 0 && !s.confirmed) s.probed = true;
      probe_id_ = next_probe_id_++;
      probe_sent_at_ = now;
      Action a;
      a.kind = ActionKind::probe;
      a.poll_id = probe_id_;
      a.url = cfg_.url.base_url + cfg_.probe_path;
      out->push_back(std::move(a));
    }
  }
  if (online_ && !paused_)
    for (Slot& s : slots_)
      if (s.poll_id == 0 && s.retry_at >= 0 && s.retry_at <= now) s.retry_at = -1;  // due: start
  pump(now, out);
  if (settle_at_ >= 0 && settle_at_ <= now) {
    settle_at_ = -1;
    Action a;
    a.kind = ActionKind::measure_scroll;
    out->push_back(std::move(a));
  }
  finish(now, out);
}

void ClientCore::on_probe(Millis now, uint64_t probe_id, int http_status, Actions* out) {
  if (closed_ || probe_id == 0 || probe_id != probe_id_) return;
  probe_id_ = 0;
  if (http_status == 200) {
    // The server answered a request sent after these polls: they are with the server. Their
    // backoff streaks stay until a real answer, in case the server drops held polls.
    for (Slot& s : slots_)
      if (s.poll_id != 0 && s.started_at <= probe_sent_at_) {
        s.confirmed = true;
        s.failing = false;
      }
  }
  finish(now, out);
}

bool ClientCore::all_confirmed() const noexcept {
  if (slots_.empty()) return false;
  for (const Slot& s : slots_)
    if (!s.confirmed) return false;
  return true;
}

void ClientCore::set_online(Millis now, bool online, Actions* out) {
  if (closed_) return;
  if (!online) {
    if (online_) {
      online_ = false;
      probe_id_ = 0;
      for (Slot& s : slots_) {
        s.confirmed = false;
        abort_slot(s, out);
        s.retry_at = -1;  // idle until online
        s.failing = false;
        s.backoff.reset();
      }
    }
  } else if (!online_) {
    online_ = true;
    for (Slot& s : slots_) s.retry_at = -1;  // retry at once
    pump(now, out);
  }
  finish(now, out);
}

void ClientCore::set_paused(Millis now, bool paused, Actions* out) {
  if (closed_ || paused == paused_) return;
  paused_ = paused;
  probe_id_ = 0;
  for (Slot& s : slots_) {
    s.confirmed = false;
    abort_slot(s, out);
    s.retry_at = -1;  // paused: idle; resumed: start at once
    s.failing = false;
    s.backoff.reset();
  }
  pump(now, out);
  finish(now, out);
}

void ClientCore::set_visible(Millis now, bool visible, Actions* out) {
  if (closed_) return;
  bool was = visible_;
  visible_ = visible;
  if (visible && !was && online_ && !paused_) {
    // Hidden tabs throttle timers: a deadline may have passed unnoticed. Restart those
    // polls at once, and skip any pending backoff wait: the user is looking now.
    for (Slot& s : slots_) {
      if (s.poll_id != 0 && s.deadline <= now) abort_slot(s, out);
      if (s.poll_id == 0) s.retry_at = -1;
    }
    pump(now, out);
  }
  finish(now, out);
}

void ClientCore::close(Millis now, Actions* out) {
  if (closed_) return;
  for (Slot& s : slots_) abort_slot(s, out);
  slots_.clear();
  settle_at_ = -1;
  if (armed_at_ >= 0) {
    armed_at_ = -1;
    Action a;
    a.kind = ActionKind::arm_timer;
    a.delay_ms = -1;
    out->push_back(std::move(a));
  }
  closed_ = true;
}

// ---------------------------------------------------------------- status and timer

Status ClientCore::compute_status() const {
  Status s;
  if (paused_) {
    s.state = ConnState::disconnected;
    return s;
  }
  if (!online_) {
    s.state = ConnState::offline;
    return s;
  }
  const Slot* worst = nullptr;
  for (const Slot& slot : slots_) {
    if (!slot.failing) continue;
    if (!worst || (slot.failure.state == ConnState::error && worst->failure.state != ConnState::error) ||
        (slot.failure.state == worst->failure.state && slot.backoff.failures() > worst->backoff.failures()))
      worst = &slot;
  }
  if (worst) return worst->failure;
  s.state = all_confirmed() ? ConnState::live : ConnState::connecting;
  return s;
}

Millis ClientCore::next_wake() const {
  Millis wake = -1;
  auto take = [&](Millis t) {
    if (t >= 0 && (wake < 0 || t < wake)) wake = t;
  };
  for (const Slot& s : slots_) {
    if (s.poll_id != 0) {
      take(s.deadline);
      if (!s.confirmed && !s.probed && probe_id_ == 0 && !cfg_.probe_path.empty())
        take(s.started_at + cfg_.probe_after_ms);
    } else if (online_ && !paused_) {
      take(s.retry_at);
    }
  }
  take(settle_at_);
  return wake;
}

void ClientCore::finish(Millis now, Actions* out) {
  Status s = compute_status();
  if (!status_sent_ || s != status_) {
    status_ = s;
    status_sent_ = true;
    Action a;
    a.kind = ActionKind::status;
    a.status = s;
    out->push_back(std::move(a));
  }
  Millis wake = plan_dirty_ ? now : next_wake();
  if (wake != armed_at_) {
    armed_at_ = wake;
    Action a;
    a.kind = ActionKind::arm_timer;
    a.delay_ms = wake < 0 ? -1 : std::max<Millis>(0, wake - now);
    out->push_back(std::move(a));
  }
}

// ---------------------------------------------------------------- queries

std::vector<std::string> ClientCore::active_poll_urls() const {
  std::vector<std::string> urls;
  for (const Slot& s : slots_)
    if (s.poll_id != 0) urls.push_back(s.url);
  return urls;
}

uint64_t ClientCore::last_id(std::string_view channel) const {
  const ChannelInfo* info = channels_.find(channel);
  return info ? info->last_id : 0;
}

}  // namespace rt::client
