#include "mirror_keeper.hpp"

#include <string>
#include <vector>

#include "json_check.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace rt {

// One seed read or verification in flight. Freed in its reply callback (called exactly
// once). The channel is looked up again by name: it may be gone by then, or be a new entry
// of the same name (another `gen`), whose mirror the reply must not touch.
struct MirrorKeeper::Call {
  MirrorKeeper* keeper;
  std::string channel;
  uint64_t gen = 0;
  uint64_t token = 0;
  uint64_t n_sent = 0;
};

MirrorKeeper::MirrorKeeper(ChannelRegistry& reg, ChannelCommands* cmds, ScriptSet* scripts,
                           const proto::Keys& keys) noexcept
    : reg_(reg), cmds_(cmds), scripts_(scripts), keys_(keys) {
  reg_.set_mirror_driver(this);
}

bool MirrorKeeper::first_seed(ChannelEntry& e) noexcept { return start_seed(e); }

void MirrorKeeper::on_message(ChannelEntry& e, const proto::Message& msg) noexcept { e.mirror.on_message(msg); }

ChannelMirror::Decision MirrorKeeper::decide(ChannelEntry& e, uint64_t last, const proto::Message** msg) noexcept {
  uint64_t now = now_ms();
  ChannelMirror::Decision d = e.mirror.decide(last, now, msg);
  if (d == ChannelMirror::Decision::unknown) {
    if (e.mirror.state() == ChannelMirror::State::empty)
      start_seed(e);
    else if (e.mirror.wants_verify(now, false))
      start_verify(e);
  }
  return d;
}

void MirrorKeeper::sweep(uint64_t now) noexcept {
  if (cmds_ == nullptr || scripts_ == nullptr) return;
  reg_.each_subscribed([&](ChannelEntry& e) {
    if (e.mirror.state() == ChannelMirror::State::empty)
      start_seed(e);  // dropped (a gap, a failed read): seed again
    else if (e.mirror.wants_verify(now, !e.empty()))
      start_verify(e);
  });
}

bool MirrorKeeper::start_seed(ChannelEntry& e) noexcept {
  if (cmds_ == nullptr || scripts_ == nullptr || !cmds_->up_for(*e.name)) return false;
  auto* call = new (std::nothrow) Call{this, std::string()};
  if (call == nullptr) return false;
  try {
    call->channel = *e.name;
    call->gen = e.gen;
    call->token = e.mirror.begin_seed(now_ms());
    // read.lua with L = 0 and a limit of 0 messages: {N} or {N, {}, newest}, atomically.
    std::vector<std::string> keys{keys_.msg_id(*e.name), keys_.backlog(*e.name)};
    std::vector<std::string> args{"0", "0"};
    if (cmds_->script_for(*e.name, scripts_->read, keys, args, on_seed_reply, call)) return true;
  } catch (...) {
  }
  e.mirror.drop();
  delete call;
  return false;
}

void MirrorKeeper::on_seed_reply(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<Call*>(priv);
  ChannelEntry* e = call->keeper->reg_.find(call->channel);
  if (e != nullptr) {
    ChannelMirror& m = e->mirror;
    bool ok = r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
              r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer >= 0;
    proto::Message newest;
    bool has_newest = false;
    if (ok && r->elements >= 3 && r->element[2]->type == REDIS_REPLY_STRING) {
      try {
        newest.json.assign(r->element[2]->str, r->element[2]->len);
        has_newest = check_message(newest.json, &newest.id, &newest.prev);
      } catch (...) {
        ok = false;
      }
    }
    uint64_t n = ok ? uint64_t(r->element[0]->integer) : 0;
    if (e->gen == call->gen) m.seed_done(call->token, ok, n, has_newest ? &newest : nullptr);
    if (ok) {
      RT_LOG(debug, "mirror seeded").kv("channel", call->channel).kv("n", n);
      call->keeper->reg_.tell_head(*e, n);
    }
    // The first seed is back (or failed: polls then read Redis): release the listeners.
    if (e->subscribed && m.state() != ChannelMirror::State::seeding) call->keeper->reg_.release(*e);
  }
  delete call;
}

void MirrorKeeper::start_verify(ChannelEntry& e) noexcept {
  if (cmds_ == nullptr || !cmds_->up_for(*e.name)) return;
  auto* call = new (std::nothrow) Call{this, std::string()};
  if (call == nullptr) return;
  try {
    call->channel = *e.name;
    call->gen = e.gen;
    std::string key = keys_.msg_id(*e.name);
    call->token = e.mirror.begin_verify(now_ms(), &call->n_sent);
    const char* argv[] = {"GET", key.c_str()};
    size_t lens[] = {3, key.size()};
    if (cmds_->command_for(*e.name, on_verify_reply, call, 2, argv, lens)) return;
  } catch (...) {
  }
  e.mirror.drop();
  delete call;
}

void MirrorKeeper::on_verify_reply(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<Call*>(priv);
  ChannelEntry* e = call->keeper->reg_.find(call->channel);
  if (e != nullptr) {
    uint64_t n = 0;
    bool ok = r != nullptr && (r->type == REDIS_REPLY_NIL ||
                               (r->type == REDIS_REPLY_STRING && proto::parse_id(std::string_view(r->str, r->len), &n)));
    bool lost = e->gen == call->gen && e->mirror.verify_done(call->token, ok, call->n_sent, n);
    if (ok) call->keeper->reg_.tell_head(*e, n);
    if (lost) {
      metrics::get().mirror_history_lost.fetch_add(1, std::memory_order_relaxed);
      RT_LOG(info, "channel history lost without a publish (msg_id went back)")
          .kv("channel", call->channel).kv("was", call->n_sent).kv("now", n);
      call->keeper->start_seed(*e);
    }
  }
  delete call;
}

}  // namespace rt
