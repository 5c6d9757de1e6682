#include "poll_core.hpp"

#include "log.hpp"

namespace rt {

PollCore::PollCore(const std::vector<proto::ChannelPos>& chans, ChannelView& view, uint64_t timeout_ms)
    : view_(view), timeout_ms_(timeout_ms), chans_(chans.size()) {
  for (size_t i = 0; i < chans.size(); i++) chans_[i].last = chans[i].last_id;
  unconfirmed_ = chans.size();
}

void PollCore::push(Actions& out, ActionKind kind) noexcept {
  try {
    out.emplace_back();
    out.back().kind = kind;
  } catch (...) {  // out of memory: nothing sensible is left to do
  }
}

std::string PollCore::single_body(const std::string& channel, const proto::Message& msg) {
  std::vector<proto::Entry> e(1);
  e[0].channel = channel;
  e[0].status = proto::EntryStatus::ok;
  e[0].msgs.push_back(msg);
  return proto::build_response(e);
}

bool PollCore::answer_from_mirrors(const std::vector<proto::ChannelPos>& chans, ChannelView& view,
                                   std::string* body, size_t* delivered) noexcept {
  try {
    std::vector<proto::Entry> entries;
    size_t bytes = 0, holds = 0;
    for (size_t i = 0; i < chans.size(); i++) {
      const proto::Message* m = nullptr;
      switch (view.decide(i, chans[i].last_id, &m)) {
        case Decision::unknown:
          return false;
        case Decision::hold:
          holds++;
          break;
        case Decision::newest:
          bytes += m->json.size();
          if (bytes > kResponseBudget) return false;  // the poll knows how to split it
          entries.emplace_back();
          entries.back().channel = chans[i].channel;
          entries.back().status = proto::EntryStatus::ok;
          entries.back().msgs.push_back(*m);
          break;
      }
    }
    // Nothing new anywhere: to be held. News on some channels while others look unchanged:
    // the poll answers after a fence (see evaluate_round).
    if (entries.empty() || holds > 0) return false;
    *delivered = entries.size();
    *body = proto::build_response(entries);
    return true;
  } catch (...) {
    return false;
  }
}

// --- events: record facts, ask for a step ---------------------------------------------------

void PollCore::start(Actions& out) noexcept {
  push(out, ActionKind::subscribe);
  push(out, ActionKind::arm_timer);
  if (!out.empty()) out.back().delay_ms = timeout_ms_;
  push(out, ActionKind::wake);
}

void PollCore::on_subscribed(size_t idx, Actions& out) noexcept {
  if (idx >= chans_.size() || chans_[idx].subscribed) return;
  chans_[idx].subscribed = true;
  if (unconfirmed_ > 0 && --unconfirmed_ == 0 && state_ == State::subscribing) push(out, ActionKind::wake);
}

void PollCore::end_with(Ending e, Actions& out) noexcept {
  if (state_ == State::closed || state_ == State::freed) return;
  if (e > ending_) ending_ = e;
  push(out, ActionKind::wake);
}

void PollCore::on_hub_unavailable(Actions& out) noexcept { end_with(Ending::hub_unavailable, out); }
void PollCore::on_hub_lost(Actions& out) noexcept { end_with(Ending::hub_lost, out); }
void PollCore::on_client_gone(Actions& out) noexcept { end_with(Ending::client_gone, out); }

void PollCore::on_message(size_t idx, const std::shared_ptr<const void>& owner, const proto::Message& msg,
                          Actions& out) noexcept {
  if (state_ == State::closed || state_ == State::freed || idx >= chans_.size()) return;
  Chan& c = chans_[idx];
  if (msg.id <= c.last) {
    // While held this is not a late copy of what the read saw: the channel's history was
    // lost (keys deleted or expired, Redis flushed). Re-read to answer with the reset.
    if (state_ == State::held) {
      c.overflow = true;
      push(out, ActionKind::wake);
    }
    return;
  }
  if (has_pending(c) && msg.id <= c.pending->back().msg->id) return;  // duplicate
  if (c.pending && c.pending->size() >= kMaxPending) {
    c.overflow = true;
  } else {
    try {
      if (!c.pending) c.pending = std::make_unique<std::vector<MessageRef>>();
      c.pending->push_back(MessageRef{owner, &msg});
    } catch (...) {
      c.overflow = true;
    }
  }
  if (state_ == State::held) push(out, ActionKind::wake);
}

void PollCore::on_redis_head(size_t idx, uint64_t n, Actions& out) noexcept {
  if (state_ == State::closed || state_ == State::freed || idx >= chans_.size() || n >= chans_[idx].last) return;
  chans_[idx].overflow = true;  // only a re-read is exact now (see evaluate_pending)
  if (state_ == State::held) push(out, ActionKind::wake);
}

void PollCore::on_read_result(size_t idx, ChannelReadResult&& r, Actions& out) noexcept {
  if (idx >= chans_.size() || !chans_[idx].reading) return;
  chans_[idx].reading = false;
  reads_in_flight_--;
  if (state_ == State::reading && idx < round_.size()) {
    if (!r.ok) {
      if (round_error_.empty()) {
        try {
          round_error_ = r.error.empty() ? "redis unavailable" : std::move(r.error);
        } catch (...) {
          round_error_ = "out of memory";
        }
      }
    } else {
      RoundResult& rr = round_[idx];
      rr.newest = r.newest;
      rr.after = std::move(r.after);
      rr.tail = std::move(r.tail);
      rr.has_tail = r.has_tail;
    }
  }
  if (reads_in_flight_ > 0) return;
  if (state_ == State::reading) {
    push(out, ActionKind::wake);
  } else if (state_ == State::closed) {
    state_ = State::freed;
    push(out, ActionKind::free);
  }
}

void PollCore::on_fence(bool ok, Actions& out) noexcept {
  (void)ok;  // not ok: decide again with what the mirrors know (never wrong, maybe not complete)
  if (state_ != State::fencing) return;
  state_ = State::fenced;
  fenced_entries_.clear();
  push(out, ActionKind::wake);
}

void PollCore::on_fence_refused(Actions& out) noexcept {
  if (state_ != State::fencing) return;
  // The hub or the command link is down: answer with what the round found.
  std::vector<proto::Entry> entries = std::move(fenced_entries_);
  fenced_entries_.clear();
  state_ = State::reading;  // not fencing: there is nothing to cancel
  answer(std::move(entries), out);
}

void PollCore::on_timeout(Actions& out) noexcept {
  if (state_ == State::closed || state_ == State::freed) return;
  timed_out_ = true;
  push(out, ActionKind::wake);
}

// --- the step -------------------------------------------------------------------------------

void PollCore::run(Actions& out) noexcept {
  if (state_ == State::closed || state_ == State::freed) return;
  switch (ending_) {
    case Ending::none:
      break;
    case Ending::client_gone:
      push(out, ActionKind::drop);
      close(out);
      return;
    case Ending::hub_lost:
    case Ending::hub_unavailable:
      counts_.redis_errors++;
      fail_with(503, ending_ == Ending::hub_unavailable ? "redis unavailable" : "redis unavailable (pub/sub connection lost)",
           out);
      return;
  }
  switch (state_) {
    case State::subscribing:
      if (unconfirmed_ > 0) {
        if (timed_out_) answer({}, out);
        return;
      }
      start_round(out);
      return;
    case State::reading:
      if (reads_in_flight_ > 0) return;
      if (!round_error_.empty()) {
        counts_.redis_errors++;
        fail_with(503, std::move(round_error_), out);
        return;
      }
      evaluate_round(out);
      return;
    case State::fencing:
      return;  // the fence comes back (or the hub is lost)
    case State::fenced:
      // The fence passed: decide again, now with every message published before it.
      start_round(out);
      return;
    case State::held:
      if (timed_out_) {
        counts_.poll_timeouts++;
        answer({}, out);
      } else {
        evaluate_pending(out);
      }
      return;
    case State::closed:
    case State::freed:
      return;
  }
}

void PollCore::start_round(Actions& out) noexcept {
  state_ = State::reading;
  round_error_.clear();
  mirror_holds_ = 0;
  std::vector<uint32_t> reads;
  try {
    round_.clear();
    round_.resize(chans_.size());
    for (size_t i = 0; i < chans_.size(); i++) {
      Chan& c = chans_[i];
      RoundResult& rr = round_[i];
      // A channel flagged `overflow` (pending overflowed, or evidence that history was
      // lost) reads Redis, not the mirror: the mirror may not have seen that evidence yet.
      const bool forced = c.overflow;
      c.overflow = false;
      // The channel's mirror decides most polls without Redis (see mirror.hpp).
      const proto::Message* m = nullptr;
      Decision d = forced ? Decision::unknown : view_.decide(i, c.last, &m);
      if (d == Decision::hold) {
        rr.newest = c.last;
        mirror_holds_++;
        counts_.mirror_decisions++;
      } else if (d == Decision::newest) {
        rr.newest = m->id;
        rr.after.push_back(*m);
        counts_.mirror_decisions++;
      } else {
        counts_.backlog_reads++;
        if (reads.empty()) reads.reserve(chans_.size() - i);  // one allocation for the round
        reads.push_back(uint32_t(i));
      }
    }
  } catch (...) {
    round_error_ = "out of memory";
    reads.clear();
  }
  if (reads.empty()) {
    run(out);  // nothing in flight: decide (or fail) now
    return;
  }
  for (uint32_t i : reads) chans_[i].reading = true;
  reads_in_flight_ = reads.size();
  try {
    out.emplace_back();
    out.back().kind = ActionKind::read;
    out.back().channels = std::move(reads);
  } catch (...) {
    for (Chan& c : chans_) c.reading = false;
    reads_in_flight_ = 0;
    round_error_ = "out of memory";
    run(out);
  }
}

void PollCore::evaluate_round(Actions& out) noexcept {
  std::vector<proto::Entry> entries;
  try {
    for (size_t i = 0; i < chans_.size() && i < round_.size(); i++) {
      Chan& c = chans_[i];
      RoundResult& rr = round_[i];
      // Not a continuation of L: a reset. Its reason comes from after[0], its message is the
      // channel's newest (`after` may be cut by the read limit): keep just those two.
      if (!rr.after.empty() && rr.after.front().prev != c.last && rr.has_tail) {
        rr.after.resize(1);
        if (rr.tail.id > rr.after.front().id) rr.after.push_back(std::move(rr.tail));
      }
      proto::Entry e;
      if (proto::decide(view_.channel(i), c.last, rr.newest, std::move(rr.after), rr.has_tail ? &rr.tail : nullptr,
                        &e)) {
        if (entries.empty()) entries.reserve(chans_.size() - i);
        entries.push_back(std::move(e));
      } else if (has_pending(c)) {
        // Nothing new up to N == last: pub/sub copies of those ids are old news.
        std::vector<MessageRef>& pend = *c.pending;
        size_t drop = 0;
        while (drop < pend.size() && pend[drop].msg->id <= c.last) drop++;
        pend.erase(pend.begin(), pend.begin() + long(drop));
      }
    }
  } catch (...) {
    fail_with(503, "out of memory", out);
    return;
  }
  // The round's results are used up: a held poll keeps only its Chan array.
  round_.clear();
  round_.shrink_to_fit();
  if (!entries.empty()) {
    if (mirror_holds_ > 0 && !fence_used_) {
      // Answering at once leaves out the channels the mirrors call unchanged; a message
      // published just before this poll may still be on its way to them. The contract
      // says "all channels that have an entry": wait for a fence, then decide again.
      fence_used_ = true;
      state_ = State::fencing;
      fenced_entries_ = std::move(entries);
      push(out, ActionKind::fence);
      return;
    }
    answer(std::move(entries), out);
    return;
  }
  if (timed_out_) {
    counts_.poll_timeouts++;
    answer({}, out);
    return;
  }
  state_ = State::held;
  push(out, ActionKind::hold);  // held from now until answered (re-read rounds included)
  evaluate_pending(out);        // messages that arrived while the read was in flight
}

void PollCore::evaluate_pending(Actions& out) noexcept {
  std::vector<proto::Entry> entries;
  bool gap = false;
  try {
    for (size_t ci = 0; ci < chans_.size(); ci++) {
      Chan& c = chans_[ci];
      if (c.overflow) gap = true;
      if (!c.pending) continue;
      std::vector<MessageRef>& pend = *c.pending;
      size_t drop = 0;
      while (drop < pend.size() && pend[drop].msg->id <= c.last) drop++;
      if (drop) pend.erase(pend.begin(), pend.begin() + long(drop));
      if (pend.empty()) {
        c.pending.reset();
        continue;
      }
      if (pend.front().msg->prev != c.last) {
        gap = true;  // not the successor of L: never guess, read what Redis has
        continue;
      }
      // The messages that continue the chain (each names the one before as its prev).
      size_t run = 1;
      while (run < pend.size() && pend[run].msg->prev == pend[run - 1].msg->id) run++;
      if (chans_.size() == 1 && run == 1 && !c.overflow) {
        // The fan-out case: one channel, one new message. Every poll of this channel that
        // was at the same id sends the same bytes (built once by the driver).
        out.emplace_back();
        Action& a = out.back();
        a.kind = ActionKind::answer_single;
        a.single = pend.front();
        a.delivered = 1;
        a.entries = 1;
        close(out);
        return;
      }
      proto::Entry e;
      e.channel = view_.channel(ci);
      e.status = proto::EntryStatus::ok;
      for (size_t i = 0; i < run; i++) e.msgs.push_back(*pend[i].msg);
      entries.push_back(std::move(e));
    }
  } catch (...) {
    fail_with(503, "out of memory", out);
    return;
  }
  if (gap && ++rereads_ > kMaxRereads) {
    // Redis keeps saying "nothing new" while pub/sub says otherwise (inconsistent data, e.g.
    // another writer): trust Redis, forget these messages, keep holding.
    RT_LOG(warn, "pub/sub disagrees with Redis after re-reads, ignoring pub/sub messages");
    for (Chan& c : chans_) {
      c.pending.reset();
      c.overflow = false;
    }
    gap = false;
  }
  if (gap) {
    counts_.rereads++;
    RT_LOG(debug, "pub/sub message that does not continue the chain, re-reading");
    start_round(out);
    return;
  }
  if (!entries.empty()) answer(std::move(entries), out);
  else rereads_ = 0;
}

// --- answers ------------------------------------------------------------------------------

void PollCore::answer(std::vector<proto::Entry> entries, Actions& out) noexcept {
  try {
    out.emplace_back();
    Action& a = out.back();
    a.kind = ActionKind::answer;
    // Bound the response: keep whole entries while they fit, truncate the `ok` list that
    // crosses the budget (a prefix of an ok list is still an unbroken chain; the client asks
    // for the rest with its next poll), and leave the other channels for that next poll.
    size_t used = 0;
    size_t keep = 0;
    for (; keep < entries.size(); keep++) {
      proto::Entry& e = entries[keep];
      size_t n = 0;
      for (; n < e.msgs.size(); n++) {
        if (used + e.msgs[n].json.size() > kResponseBudget && (used > 0 || n > 0)) break;
        used += e.msgs[n].json.size();
      }
      if (n < e.msgs.size()) {
        if (e.status == proto::EntryStatus::ok && n > 0) {
          e.msgs.resize(n);
          keep++;
        }
        break;
      }
    }
    entries.resize(keep);
    for (const proto::Entry& e : entries) {
      a.delivered += e.msgs.size();
      if (e.status == proto::EntryStatus::reset)
        (e.reason == proto::ResetReason::behind ? a.resets_behind : a.resets_lost)++;
    }
    a.entries = entries.size();
    a.body = proto::build_response(entries);
  } catch (...) {
    if (!out.empty() && out.back().kind == ActionKind::answer) out.pop_back();
    fail_with(503, "out of memory", out);
    return;
  }
  close(out);
}

void PollCore::fail_with(int status, std::string error, Actions& out) noexcept {
  try {
    out.emplace_back();
    out.back().kind = ActionKind::fail;
    out.back().status = status;
    out.back().error = std::move(error);
  } catch (...) {
  }
  close(out);
}

void PollCore::close(Actions& out) noexcept {
  if (state_ == State::fencing) push(out, ActionKind::cancel_fence);
  push(out, ActionKind::unsubscribe);
  push(out, ActionKind::stop_timer);
  for (Chan& c : chans_) c.pending.reset();
  round_.clear();
  fenced_entries_.clear();
  if (reads_in_flight_ > 0) {
    state_ = State::closed;  // on_read_result frees once the last result came
  } else {
    state_ = State::freed;
    push(out, ActionKind::free);
  }
}

}  // namespace rt
