#include "mirror.hpp"

namespace rt {

ChannelMirror::Decision ChannelMirror::decide(uint64_t last, uint64_t now_ms, const proto::Message** newest) noexcept {
  used_ = true;
  if (state_ != State::valid || now_ms - verified_ms_ > kTrustMs) return Decision::unknown;
  if (last == n_) return Decision::hold;
  if (has_newest_ && last == newest_.prev) {
    *newest = &newest_;
    return Decision::newest;
  }
  return Decision::unknown;  // L > N (history lost, or a message not here yet), or further back
}

uint64_t ChannelMirror::begin_seed(uint64_t now_ms) noexcept {
  drop();
  state_ = State::seeding;
  verify_sent_ms_ = now_ms;
  return token_;
}

void ChannelMirror::seed_done(uint64_t token, bool ok, uint64_t n, const proto::Message* newest) noexcept {
  if (token != token_ || state_ != State::seeding) return;
  if (!ok || seed_overflow_) {
    drop();
    return;
  }
  state_ = State::valid;
  n_ = n;
  has_newest_ = false;
  if (newest != nullptr && newest->id == n) {
    try {
      newest_ = *newest;
      has_newest_ = true;
    } catch (...) {
    }
  }
  verified_ms_ = verify_sent_ms_;
  used_ = false;
  // What pub/sub delivered while the read was in flight: ids up to n are in the read's N
  // already (published before the read ran); the rest must continue the chain from n.
  std::vector<proto::Message> buf;
  buf.swap(seed_buf_);
  for (const proto::Message& m : buf) {
    if (m.id > n || state_ != State::valid) on_message(m);
  }
}

bool ChannelMirror::wants_verify(uint64_t now_ms, bool has_listeners) const noexcept {
  return state_ == State::valid && !verify_in_flight_ && (used_ || has_listeners) &&
         now_ms - verified_ms_ >= kVerifyAfterMs;
}

uint64_t ChannelMirror::begin_verify(uint64_t now_ms, uint64_t* n_sent) noexcept {
  token_++;
  verify_in_flight_ = true;
  verify_sent_ms_ = now_ms;
  used_ = false;
  *n_sent = n_;
  return token_;
}

bool ChannelMirror::verify_done(uint64_t token, bool ok, uint64_t n_sent, uint64_t n_redis) noexcept {
  if (token != token_ || state_ != State::valid) return false;
  verify_in_flight_ = false;
  if (!ok) {
    drop();
    return false;
  }
  // The GET ran after every message up to n_sent was published (their pub/sub copies had
  // arrived when it was sent), so a smaller msg_id means ids went back: history lost.
  if (n_redis < n_sent) {
    drop();
    return true;
  }
  verified_ms_ = verify_sent_ms_;
  return false;
}

void ChannelMirror::on_message(const proto::Message& msg) noexcept {
  switch (state_) {
    case State::empty:
      return;
    case State::seeding:
      if (seed_buf_.size() >= kMaxSeedBuffer) {
        seed_overflow_ = true;
        return;
      }
      try {
        seed_buf_.push_back(msg);
      } catch (...) {
        seed_overflow_ = true;
      }
      return;
    case State::valid:
      // Anything but N's successor (prev == N) drops the mirror. That includes a copy of a
      // message the seed read already counted (published before the read ran, but
      // delivered on the pub/sub socket after the read's reply on the command socket): only
      // Redis can say whether history went on, was lost or was rolled back.
      if (msg.prev != n_) {
        drop();  // a gap, a duplicate or another history: only Redis knows now
        return;
      }
      try {
        newest_ = msg;
        has_newest_ = true;
      } catch (...) {
        has_newest_ = false;
      }
      n_ = msg.id;
      return;
  }
}

void ChannelMirror::drop() noexcept {
  state_ = State::empty;
  token_++;
  n_ = 0;
  has_newest_ = false;
  newest_.json.clear();
  newest_.json.shrink_to_fit();
  verify_in_flight_ = false;
  used_ = false;
  seed_overflow_ = false;
  seed_buf_.clear();
  seed_buf_.shrink_to_fit();
}

}  // namespace rt
