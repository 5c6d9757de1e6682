#include "poll.hpp"

#include "http_reply.hpp"
#include "json_check.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "scripts.hpp"

namespace rt {

namespace {
constexpr const char* kReadLimit = "1000";         // backlog messages per channel per read
constexpr size_t kMaxPending = 1000;               // buffered pub/sub messages per channel
constexpr size_t kResponseBudget = 8 << 20;        // bytes of messages in one response
constexpr int kMaxRereads = 3;                     // re-reads in a row that found nothing
}  // namespace

Poll::Poll(Worker& w, http::Request* req, uint64_t started_us) : w_(w), req_(req), started_us_(started_us) {
  metrics::get().open_polls.fetch_add(1, std::memory_order_relaxed);
}

Poll::~Poll() {
  metrics::get().open_polls.fetch_sub(1, std::memory_order_relaxed);
  if (counted_held_) metrics::get().held_polls.fetch_sub(1, std::memory_order_relaxed);
}

bool Poll::answer_from_mirrors(Worker& w, http::Request* req, const std::vector<proto::ChannelPos>& chans,
                               uint64_t started_us) noexcept {
  std::string body;
  size_t delivered = 0;
  try {
    std::vector<proto::Entry> entries;
    size_t bytes = 0, holds = 0;
    for (const proto::ChannelPos& cp : chans) {
      const proto::Message* m = nullptr;
      switch (w.hub().decide(cp.channel, cp.last_id, &m)) {
        case ChannelMirror::Decision::unknown:
          return false;
        case ChannelMirror::Decision::hold:
          holds++;
          break;
        case ChannelMirror::Decision::newest:
          bytes += m->json.size();
          if (bytes > kResponseBudget) return false;  // the slow path knows how to split it
          entries.emplace_back();
          entries.back().channel = cp.channel;
          entries.back().status = proto::EntryStatus::ok;
          entries.back().msgs.push_back(*m);
          break;
      }
    }
    // Nothing new anywhere: to be held. News on some channels while others look unchanged:
    // the Poll path answers after a fence (see evaluate_round).
    if (entries.empty() || holds > 0) return false;
    delivered = entries.size();
    body = proto::build_response(entries);
  } catch (...) {
    return false;
  }
  send_json(req, 200, body, metrics::Endpoint::rt, w.reply_options());
  auto& mt = metrics::get();
  mt.mirror_decisions.fetch_add(chans.size(), std::memory_order_relaxed);
  mt.deliveries.fetch_add(delivered, std::memory_order_relaxed);
  return true;
}

void Poll::start(Worker& w, http::Request* req, std::vector<proto::ChannelPos> chans, uint64_t started_us) noexcept {
  if (answer_from_mirrors(w, req, chans, started_us)) return;
  // One bound for the whole process (all workers); threads may overshoot it by a few.
  if (metrics::get().open_polls.load(std::memory_order_relaxed) >= int64_t(w.cfg().max_held)) {
    send_error(req, 503, "too many open polls, retry later", metrics::Endpoint::rt, w.reply_options());
    return;
  }
  Poll* p = new (std::nothrow) Poll(w, req, started_us);
  if (p == nullptr) {
    send_error(req, 503, "out of memory", metrics::Endpoint::rt, w.reply_options());
    return;
  }
  try {
    p->chans_.resize(chans.size());
  } catch (...) {
    delete p;
    send_error(req, 503, "out of memory", metrics::Endpoint::rt, w.reply_options());
    return;
  }
  // The HTTP layer reads the connection all along: a client that goes away (held or not)
  // is reported here at once.
  req->on_gone(on_gone, p);
  for (size_t i = 0; i < chans.size(); i++) {
    p->chans_[i].link.listener = p;
    p->chans_[i].link.idx = uint32_t(i);
    p->chans_[i].last = chans[i].last_id;
  }
  p->timer_.reset(evtimer_new(w.base(), on_timeout, p));
  timeval tv = ms_to_tv(uint64_t(w.cfg().poll_timeout_s * 1000.0 + 0.5));
  if (p->timer_) evtimer_add(p->timer_.get(), &tv);

  // Subscribe first: a message published after this point reaches us on pub/sub or is in
  // the backlog the read (which starts once every SUBSCRIBE is confirmed) returns.
  for (size_t i = 0; i < p->chans_.size() && !p->hub_lost_; i++) {
    Hub::AddResult r = Hub::AddResult::unavailable;
    try {
      r = w.hub().add(chans[i].channel, &p->chans_[i].link);
    } catch (...) {  // out of memory: like a hub that is down
    }
    switch (r) {
      case Hub::AddResult::confirmed: break;
      case Hub::AddResult::pending: p->unconfirmed_++; break;
      case Hub::AddResult::unavailable: p->hub_lost_ = true; p->hub_never_up_ = true; break;
    }
  }
  w.defer(p);
}

// --- callbacks: record facts, schedule step() ---------------------------------------------

void Poll::on_subscribed(size_t idx) noexcept {
  (void)idx;
  if (unconfirmed_ > 0 && --unconfirmed_ == 0) w_.defer(this);
}

void Poll::on_message(size_t idx, const SharedMessagePtr& shared) noexcept {
  const proto::Message& msg = shared->msg;
  if (state_ == State::done || idx >= chans_.size()) return;
  Chan& c = chans_[idx];
  if (msg.id <= c.last) {
    // While held this is not a late copy of what the read saw: the channel's history was
    // lost (keys deleted or expired, Redis flushed). Re-read to answer with the reset.
    if (state_ == State::held) {
      c.overflow = true;
      woken_ = true;
      w_.defer(this);
    }
    return;
  }
  if (has_pending(c) && msg.id <= c.pending->back()->msg.id) return;  // duplicate
  if (c.pending && c.pending->size() >= kMaxPending) {
    c.overflow = true;
  } else {
    try {
      if (!c.pending) c.pending = std::make_unique<std::vector<SharedMessagePtr>>();
      c.pending->push_back(shared);
    } catch (...) {
      c.overflow = true;
    }
  }
  if (state_ == State::held) {
    woken_ = true;
    w_.defer(this);
  }
}

void Poll::on_hub_lost() noexcept {
  hub_lost_ = true;  // the hub already unregistered every link
  w_.defer(this);
}

void Poll::on_redis_head(size_t idx, uint64_t n) noexcept {
  if (state_ == State::done || idx >= chans_.size() || n >= chans_[idx].last) return;
  chans_[idx].overflow = true;  // only a re-read is exact now (see evaluate_pending)
  if (state_ == State::held) {
    woken_ = true;
    w_.defer(this);
  }
}

void Poll::on_fence(bool ok) noexcept {
  (void)ok;  // not ok: answer with what the mirrors know (never wrong, maybe not complete)
  if (fence_ != Fence::waiting) return;
  fence_ = Fence::passed_redo;
  w_.defer(this);
}

void Poll::on_timeout(evutil_socket_t, short, void* arg) noexcept {
  auto* p = static_cast<Poll*>(arg);
  p->timed_out_ = true;
  p->w_.defer(p);
}

void Poll::on_gone(void* arg) noexcept {
  // Only record it: the Request is detached but still ours (released in finish()).
  auto* p = static_cast<Poll*>(arg);
  p->client_gone_ = true;
  metrics::get().client_drops.fetch_add(1, std::memory_order_relaxed);
  RT_LOG(debug, "client closed an open poll");
  p->w_.defer(p);
}

void Poll::on_read_reply(redisReply* reply, void* priv) noexcept {
  RoundResult& rr = *static_cast<RoundResult*>(priv);
  Poll* p = rr.poll;
  if (p->state_ == State::reading) p->store_read(rr, reply);
  if (--p->reads_outstanding_ == 0) p->w_.defer(p);
}

// --- the state machine -------------------------------------------------------------------

void Poll::run_deferred() noexcept {
  if (state_ != State::done) step();
  if (state_ == State::done && reads_outstanding_ == 0 && !is_queued()) delete this;
}

void Poll::step() noexcept {
  if (client_gone_) {
    finish();
    return;
  }
  if (hub_lost_) {
    metrics::get().redis_errors.fetch_add(1, std::memory_order_relaxed);
    answer_error(503, hub_never_up_ ? "redis unavailable" : "redis unavailable (pub/sub connection lost)");
    return;
  }
  switch (state_) {
    case State::subscribing:
      if (unconfirmed_ > 0) {
        if (timed_out_) answer({});
        return;
      }
      start_round();
      return;
    case State::reading:
      if (reads_outstanding_ > 0 || fence_ == Fence::waiting) return;
      if (fence_ == Fence::passed_redo) {
        // The fence passed: decide again, now with every message published before it.
        fence_ = Fence::passed;
        start_round();
        return;
      }
      if (read_failed_) {
        metrics::get().redis_errors.fetch_add(1, std::memory_order_relaxed);
        answer_error(503, read_error_);
        return;
      }
      evaluate_round();
      return;
    case State::held:
      if (timed_out_) {
        metrics::get().poll_timeouts.fetch_add(1, std::memory_order_relaxed);
        answer({});
      } else if (woken_) {
        evaluate_pending();
      }
      return;
    case State::done:
      return;
  }
}

void Poll::start_round() noexcept {
  state_ = State::reading;
  read_failed_ = false;
  woken_ = false;
  // A channel flagged `overflow` (pending overflowed, or evidence that history was lost)
  // reads Redis, not the mirror: the mirror may not have seen that evidence yet.
  std::vector<bool> must_read;
  try {
    must_read.resize(chans_.size());
  } catch (...) {
  }
  for (size_t i = 0; i < chans_.size(); i++) {
    if (i < must_read.size()) must_read[i] = chans_[i].overflow;
    chans_[i].overflow = false;
  }
  mirror_holds_ = 0;
  try {
    round_.clear();
    round_.resize(chans_.size());
    std::vector<std::string> keys(2), args{std::string(), kReadLimit};
    for (size_t i = 0; i < chans_.size(); i++) {
      Chan& c = chans_[i];
      RoundResult& rr = round_[i];
      rr.poll = this;
      rr.idx = i;
      // The channel's mirror decides most polls without Redis (see mirror.hpp).
      const proto::Message* m = nullptr;
      bool forced = i >= must_read.size() || must_read[i];
      ChannelMirror::Decision d = forced ? ChannelMirror::Decision::unknown : w_.hub().decide(c.link, c.last, &m);
      if (d == ChannelMirror::Decision::hold) {
        rr.newest = c.last;
        mirror_holds_++;
        metrics::get().mirror_decisions.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (d == ChannelMirror::Decision::newest) {
        rr.newest = m->id;
        rr.after.push_back(*m);
        metrics::get().mirror_decisions.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      metrics::get().backlog_reads.fetch_add(1, std::memory_order_relaxed);
      keys[0] = w_.keys().msg_id(name_of(c));
      keys[1] = w_.keys().backlog(name_of(c));
      args[0] = std::to_string(c.last);
      // A cluster reads each channel on its own master (all in flight at once).
      bool sent = w_.cluster() ? w_.cluster()->run_script(w_.scripts().read, keys, args, on_read_reply, &rr)
                               : run_script(w_.cmd(), w_.scripts().read, keys, args, on_read_reply, &rr);
      if (!sent) {
        read_failed_ = true;
        read_error_ = "redis unavailable";
        break;
      }
      reads_outstanding_++;
    }
  } catch (...) {
    read_failed_ = true;
    read_error_ = "out of memory";
  }
  if (reads_outstanding_ == 0) step();  // nothing in flight: fail now
}

void Poll::store_read(RoundResult& c, redisReply* r) noexcept {
  const std::string& name = name_of(chans_[c.idx]);
  const uint64_t last = chans_[c.idx].last;
  if (r == nullptr) {
    read_failed_ = true;
    read_error_ = "redis unavailable";
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    read_failed_ = true;
    read_error_ = "redis error: " + std::string(r->str, r->len);
    RT_LOG(warn, "read script failed").kv("channel", name).kv("error", read_error_);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[0]->integer < 0) {
    read_failed_ = true;
    read_error_ = "redis error: unexpected reply to read.lua";
    return;
  }
  c.newest = uint64_t(r->element[0]->integer);
  if (r->elements < 3) return;  // N == L: nothing new
  auto invalid = [&](const char* s, size_t n) {
    metrics::get().invalid_messages.fetch_add(1, std::memory_order_relaxed);
    RT_LOG(warn, "invalid message in backlog, skipped").kv("channel", name).kv("message", std::string(s, n < 200 ? n : 200));
  };
  try {
    redisReply* after = r->element[1];
    if (after->type == REDIS_REPLY_ARRAY) {
      c.after.reserve(after->elements);
      for (size_t i = 0; i < after->elements; i++) {
        redisReply* m = after->element[i];
        if (m->type != REDIS_REPLY_STRING) continue;
        proto::Message msg;
        msg.json.assign(m->str, m->len);
        if (!check_message(msg.json, &msg.id, &msg.prev) || msg.id <= last ||
            (!c.after.empty() && msg.id <= c.after.back().id)) {
          invalid(m->str, m->len);
          continue;
        }
        c.after.push_back(std::move(msg));
      }
    }
    redisReply* tail = r->element[2];
    if (tail->type == REDIS_REPLY_STRING) {
      c.tail.json.assign(tail->str, tail->len);
      if (check_message(c.tail.json, &c.tail.id, &c.tail.prev))
        c.has_tail = true;
      else
        invalid(tail->str, tail->len);
    }
  } catch (...) {
    read_failed_ = true;
    read_error_ = "out of memory";
  }
}

void Poll::evaluate_round() noexcept {
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
      if (proto::decide(name_of(c), c.last, rr.newest, std::move(rr.after), rr.has_tail ? &rr.tail : nullptr, &e)) {
        entries.push_back(std::move(e));
      } else if (has_pending(c)) {
        // Nothing new up to N == last: pub/sub copies of those ids are old news.
        std::vector<SharedMessagePtr>& pend = *c.pending;
        size_t drop = 0;
        while (drop < pend.size() && pend[drop]->msg.id <= c.last) drop++;
        pend.erase(pend.begin(), pend.begin() + long(drop));
      }
    }
  } catch (...) {
    answer_error(503, "out of memory");
    return;
  }
  // The round's results are used up: a held poll keeps only its Chan array.
  round_.clear();
  round_.shrink_to_fit();
  if (!entries.empty()) {
    if (mirror_holds_ > 0 && fence_ == Fence::none && w_.hub().fence(this)) {
      // Answering at once leaves out the channels the mirrors call unchanged; a message
      // published just before this poll may still be on its way to them. The contract
      // says "all channels that have an entry": wait for a fence, then decide again.
      fence_ = Fence::waiting;
      round_.clear();
      round_.shrink_to_fit();
      return;
    }
    answer(std::move(entries));
    return;
  }
  if (timed_out_) {
    metrics::get().poll_timeouts.fetch_add(1, std::memory_order_relaxed);
    answer({});
    return;
  }
  state_ = State::held;
  if (!counted_held_) {
    // Held from now until answered (re-read rounds included): the rt_held_polls gauge.
    counted_held_ = true;
    metrics::get().held_polls.fetch_add(1, std::memory_order_relaxed);
  }
  evaluate_pending();  // messages that arrived while the read was in flight
}

void Poll::evaluate_pending() noexcept {
  woken_ = false;
  std::vector<proto::Entry> entries;
  bool gap = false;
  try {
    for (Chan& c : chans_) {
      if (c.overflow) gap = true;
      if (!c.pending) continue;
      std::vector<SharedMessagePtr>& pend = *c.pending;
      size_t drop = 0;
      while (drop < pend.size() && pend[drop]->msg.id <= c.last) drop++;
      if (drop) pend.erase(pend.begin(), pend.begin() + long(drop));
      if (pend.empty()) {
        c.pending.reset();
        continue;
      }
      if (pend.front()->msg.prev != c.last) {
        gap = true;  // not the successor of L: never guess, read what Redis has
        continue;
      }
      // The messages that continue the chain (each names the one before as its prev).
      size_t run = 1;
      while (run < pend.size() && pend[run]->msg.prev == pend[run - 1]->msg.id) run++;
      if (chans_.size() == 1 && run == 1 && !c.overflow) {
        // The fan-out case: one channel, one new message. Every poll of this channel that
        // was at the same id sends the same bytes: build them once (SharedMessage).
        const SharedMessage& sm = *pend.front();
        if (!sm.single_body) {
          proto::Entry e;
          e.channel = name_of(c);
          e.status = proto::EntryStatus::ok;
          e.msgs.push_back(sm.msg);
          std::string body = proto::build_response({e});
          EvbufferPtr buf(evbuffer_new());
          if (!buf || evbuffer_add(buf.get(), body.data(), body.size()) != 0) {
            send_answer(body, nullptr, 1, Resets(), 1);  // out of memory: a copy then
            return;
          }
          sm.single_body = std::move(buf);
        }
        send_answer({}, sm.single_body.get(), 1, Resets(), 1);
        return;
      }
      proto::Entry e;
      e.channel = name_of(c);
      e.status = proto::EntryStatus::ok;
      for (size_t i = 0; i < run; i++) e.msgs.push_back(pend[i]->msg);
      entries.push_back(std::move(e));
    }
  } catch (...) {
    answer_error(503, "out of memory");
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
    metrics::get().rereads.fetch_add(1, std::memory_order_relaxed);
    RT_LOG(debug, "pub/sub message that does not continue the chain, re-reading");
    start_round();
    return;
  }
  if (!entries.empty()) answer(std::move(entries));
  else if (!gap) rereads_ = 0;
}

// --- answers -----------------------------------------------------------------------------

void Poll::answer(std::vector<proto::Entry> entries) noexcept {
  if (req_ == nullptr || !req_->connected()) {
    finish();
    return;
  }
  std::string body;
  uint64_t delivered = 0;
  Resets resets;
  try {
    // Bound the response: keep whole entries while they fit, truncate the `ok` list that
    // crosses the budget (a prefix of an ok list is still an unbroken chain; the client asks for
    // the rest with its next poll), and leave the other channels for that next poll.
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
      delivered += e.msgs.size();
      if (e.status == proto::EntryStatus::reset)
        (e.reason == proto::ResetReason::behind ? resets.behind : resets.lost)++;
    }
    body = proto::build_response(entries);
  } catch (...) {
    answer_error(503, "out of memory");
    return;
  }
  send_answer(body, nullptr, delivered, resets, entries.size());
}

void Poll::send_answer(std::string_view body, evbuffer* shared, uint64_t delivered, Resets resets,
                       size_t entries) noexcept {
  if (req_ == nullptr || !req_->connected()) {
    finish();
    return;
  }
  if (shared != nullptr) send_json_shared(req_, 200, shared, metrics::Endpoint::rt, w_.reply_options());
  else send_json(req_, 200, body, metrics::Endpoint::rt, w_.reply_options());
  req_ = nullptr;
  auto& m = metrics::get();
  m.deliveries.fetch_add(delivered, std::memory_order_relaxed);
  m.resets_behind.fetch_add(resets.behind, std::memory_order_relaxed);
  m.resets_lost.fetch_add(resets.lost, std::memory_order_relaxed);
  uint64_t us = now_us() - started_us_;
  RT_LOG(debug, "rt answered").kv("status", 200).kv("channels", chans_.size()).kv("entries", entries)
      .kv("messages", delivered).kv("ms", double(us) / 1000.0);
  finish();
}

void Poll::answer_error(int code, const std::string& message) noexcept {
  if (req_ != nullptr && req_->connected()) {
    send_error(req_, code, message, metrics::Endpoint::rt, w_.reply_options());
    req_ = nullptr;
    uint64_t us = now_us() - started_us_;
    RT_LOG(debug, "rt answered").kv("status", code).kv("error", message).kv("ms", double(us) / 1000.0);
  }
  finish();
}

void Poll::finish() noexcept {
  if (state_ == State::done) return;
  state_ = State::done;
  if (req_ != nullptr) {
    req_->release();  // the client is gone (detached): just freed
    req_ = nullptr;
  }
  if (fence_ == Fence::waiting) w_.hub().cancel_fence(this);
  for (Chan& c : chans_) {
    w_.hub().remove(&c.link);  // no-op when not registered (or the hub dropped it)
    c.pending.reset();
  }
  timer_.reset();
  if (counted_held_) {
    counted_held_ = false;
    metrics::get().held_polls.fetch_sub(1, std::memory_order_relaxed);
  }
  w_.defer(this);  // freed by run_deferred once no read reply is outstanding
}

}  // namespace rt
