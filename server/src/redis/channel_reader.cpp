#include "channel_reader.hpp"

#include <memory>

#include "channel_commands.hpp"
#include "cluster_commands.hpp"
#include "json_check.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "scripts.hpp"
#include "worker.hpp"

namespace rt {

namespace {

// One read_channels() call: a slot per channel that went out, freed after the last reply.
struct Batch {
  struct Slot {
    Batch* batch = nullptr;
    uint32_t tag = 0;
    uint64_t last = 0;
    std::string channel;  // for the log of an invalid backlog member
  };
  ChannelReadSink* sink = nullptr;
  size_t outstanding = 0;
  std::vector<Slot> slots;
};

ChannelReadResult failed(std::string why) {
  ChannelReadResult r;
  r.error = std::move(why);
  return r;
}

// Turns read.lua's reply ({N} or {N, after, newest}; NULL when the connection failed) into
// a result for the read of `slot`.
ChannelReadResult parse_reply(const Batch::Slot& slot, redisReply* r) noexcept {
  if (r == nullptr) return failed("redis unavailable");
  try {
    if (r->type == REDIS_REPLY_ERROR) {
      ChannelReadResult f = failed("redis error: " + std::string(r->str, r->len));
      RT_LOG(warn, "read script failed").kv("channel", slot.channel).kv("error", f.error);
      return f;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[0]->integer < 0)
      return failed("redis error: unexpected reply to read.lua");
    ChannelReadResult c;
    c.ok = true;
    c.newest = uint64_t(r->element[0]->integer);
    if (r->elements < 3) return c;  // N == L: nothing new
    auto invalid = [&](const char* s, size_t n) {
      metrics::get().invalid_messages.fetch_add(1, std::memory_order_relaxed);
      RT_LOG(warn, "invalid message in backlog, skipped")
          .kv("channel", slot.channel).kv("message", std::string(s, n < 200 ? n : 200));
    };
    redisReply* after = r->element[1];
    if (after->type == REDIS_REPLY_ARRAY) {
      c.after.reserve(after->elements);
      for (size_t i = 0; i < after->elements; i++) {
        redisReply* m = after->element[i];
        if (m->type != REDIS_REPLY_STRING) continue;
        proto::Message msg;
        msg.json.assign(m->str, m->len);
        if (!check_message(msg.json, &msg.id, &msg.prev) || msg.id <= slot.last ||
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
    return c;
  } catch (...) {
    return failed("out of memory");
  }
}

void on_read_reply(redisReply* reply, void* priv) noexcept {
  auto* slot = static_cast<Batch::Slot*>(priv);
  Batch* b = slot->batch;
  b->sink->on_channel_read(slot->tag, parse_reply(*slot, reply));
  // The batch is our own memory, not the caller of this callback: nothing touches it after.
  if (--b->outstanding == 0) delete b;
}

}  // namespace

void read_channels(ChannelCommands& cmds, Script& read, const proto::Keys& key_names, const std::vector<ChannelRead>& reads,
                   ChannelReadSink* sink) noexcept {
  std::unique_ptr<Batch> b(new (std::nothrow) Batch);
  size_t sent = 0;
  try {
    if (!b) throw std::bad_alloc();
    b->sink = sink;
    b->slots.resize(reads.size());  // never resized again: the replies point into it
    std::vector<std::string> keys(2), args{std::string(), std::to_string(kMaxReadMessages)};
    for (; sent < reads.size(); sent++) {
      const ChannelRead& rd = reads[sent];
      Batch::Slot& s = b->slots[sent];
      s.batch = b.get();
      s.tag = rd.tag;
      s.last = rd.last;
      s.channel.assign(rd.channel);
      keys[0] = key_names.msg_id(rd.channel);
      keys[1] = key_names.backlog(rd.channel);
      args[0] = std::to_string(rd.last);
      b->outstanding++;
      if (!cmds.script_for(s.channel, read, keys, args, on_read_reply, &s)) {
        b->outstanding--;  // not sent (its connection is down): fails now, the others go on
        sink->on_channel_read(rd.tag, failed("redis unavailable"));
      }
    }
  } catch (...) {
  }
  // What memory did not suffice for fails now.
  for (size_t i = sent; i < reads.size(); i++) sink->on_channel_read(reads[i].tag, failed("out of memory"));
  if (b && b->outstanding > 0) b.release();  // freed by the last reply
}

void read_channels(Worker& w, const std::vector<ChannelRead>& reads, ChannelReadSink* sink) noexcept {
  if (ClusterLinks* cl = w.cluster()) {
    ClusterCommands cmds(*cl);  // Redis Cluster: each channel on its slot's master, in parallel
    read_channels(cmds, w.scripts().read, w.keys(), reads, sink);
    return;
  }
  LinkCommands cmds(w.cmd());  // standalone / Sentinel: every channel on the command link
  read_channels(cmds, w.scripts().read, w.keys(), reads, sink);
}

}  // namespace rt
