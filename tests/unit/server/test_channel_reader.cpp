// Unit tests of server/src/redis/channel_reader (the seam through which a poll reads
// Redis): read_channels over a ChannelCommands that records the read.lua calls and lets the
// test answer them, in any order, with hand-made hiredis replies. Checks what goes out per
// channel (keys, L, the limit), one result per channel exactly once (a channel whose
// connection is down fails at once, the others still go out), and how replies are read
// (nothing new, messages after L with invalid members skipped, the newest, errors, NULL).
#include "cmocka_wrap.hpp"

#include <hiredis/hiredis.h>

#include <deque>
#include <map>

#include "channel_commands.hpp"
#include "channel_reader.hpp"
#include "protocol/keys.hpp"
#include "scripts.hpp"

namespace {

using rt::ChannelRead;
using rt::ChannelReadResult;

struct Call {
  std::string channel;
  std::vector<std::string> keys, args;
  rt::RedisLink::ReplyFn fn;
  void* priv;
};

// Routes nothing: records each call; channels in `down` are not sent.
class FakeCommands final : public rt::ChannelCommands {
 public:
  bool up_for(const std::string& c) const noexcept override { return !down.count(c); }
  bool command_for(const std::string&, rt::RedisLink::ReplyFn, void*, int, const char**, const size_t*) noexcept override {
    return false;
  }
  bool script_for(const std::string& channel, rt::Script& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args, rt::RedisLink::ReplyFn fn, void* priv) noexcept override {
    assert_string_equal(script.file.c_str(), "read.lua");
    if (down.count(channel)) return false;
    calls.push_back({channel, keys, args, fn, priv});
    return true;
  }
  std::map<std::string, bool> down;
  std::vector<Call> calls;
};

class Sink final : public rt::ChannelReadSink {
 public:
  void on_channel_read(uint32_t tag, ChannelReadResult&& r) noexcept override {
    got[tag].push_back(std::move(r));
    order.push_back(tag);
  }
  std::map<uint32_t, std::vector<ChannelReadResult>> got;
  std::vector<uint32_t> order;
};

// Hand-made replies (hiredis's struct, owned by the test).
struct Replies {
  std::vector<std::unique_ptr<redisReply>> all;
  std::vector<std::unique_ptr<redisReply*[]>> arrays;
  std::deque<std::string> strings;  // push_back keeps c_str() stable
  redisReply* make(int type) {
    all.push_back(std::make_unique<redisReply>());
    redisReply* r = all.back().get();
    std::memset(r, 0, sizeof(*r));
    r->type = type;
    return r;
  }
  redisReply* integer(long long v) {
    redisReply* r = make(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
  }
  redisReply* string(const std::string& s, int type = REDIS_REPLY_STRING) {
    strings.push_back(s);
    redisReply* r = make(type);
    r->str = const_cast<char*>(strings.back().c_str());
    r->len = strings.back().size();
    return r;
  }
  redisReply* array(std::vector<redisReply*> el) {
    redisReply* r = make(REDIS_REPLY_ARRAY);
    arrays.push_back(std::make_unique<redisReply*[]>(el.size()));
    for (size_t i = 0; i < el.size(); i++) arrays.back()[i] = el[i];
    r->element = arrays.back().get();
    r->elements = el.size();
    return r;
  }
};

std::string msg(uint64_t id, uint64_t prev) {
  return "{\"id\":" + std::to_string(id) + ",\"prev\":" + std::to_string(prev) + ",\"payload\":1}";
}

rt::Script read_script() {
  rt::Script s;
  s.file = "read.lua";
  return s;
}

void test_one_result_per_channel_in_any_order(void**) {
  FakeCommands cmds;
  cmds.down["b"] = true;
  Sink sink;
  rt::Script script = read_script();
  rt::proto::Keys keys("channel:");
  std::vector<ChannelRead> reads = {{"a", 10, 0}, {"b", 0, 1}, {"c", 70, 2}};
  rt::read_channels(cmds, script, keys, reads, &sink);
  // b's connection is down: failed at once; a and c went out.
  assert_int_equal(sink.order.size(), 1);
  assert_int_equal(sink.order[0], 1);
  assert_false(sink.got[1][0].ok);
  assert_string_equal(sink.got[1][0].error.c_str(), "redis unavailable");
  assert_int_equal(cmds.calls.size(), 2);
  assert_string_equal(cmds.calls[0].channel.c_str(), "a");
  assert_string_equal(cmds.calls[0].keys[0].c_str(), "channel:{a}:msg_id");
  assert_string_equal(cmds.calls[0].keys[1].c_str(), "channel:{a}:msg_backlog");
  assert_string_equal(cmds.calls[0].args[0].c_str(), "10");
  assert_string_equal(cmds.calls[0].args[1].c_str(), "1000");
  assert_string_equal(cmds.calls[1].args[0].c_str(), "70");

  Replies rp;
  // c first: nothing new ({N} with N == L)
  cmds.calls[1].fn(rp.array({rp.integer(70)}), cmds.calls[1].priv);
  // then a: two messages after 10, an invalid member and a too old one skipped, the newest
  redisReply* after = rp.array({rp.string(msg(20, 10)), rp.string("not json"), rp.string(msg(5, 0)),
                                rp.string(msg(30, 20))});
  cmds.calls[0].fn(rp.array({rp.integer(30), after, rp.string(msg(30, 20))}), cmds.calls[0].priv);

  assert_true(sink.order == std::vector<uint32_t>({1, 2, 0}));
  for (uint32_t t = 0; t < 3; t++) assert_int_equal(sink.got[t].size(), 1);  // exactly once each
  const ChannelReadResult& c = sink.got[2][0];
  assert_true(c.ok);
  assert_int_equal(c.newest, 70);
  assert_true(c.after.empty());
  assert_false(c.has_tail);
  const ChannelReadResult& a = sink.got[0][0];
  assert_true(a.ok);
  assert_int_equal(a.newest, 30);
  assert_int_equal(a.after.size(), 2);
  assert_int_equal(a.after[0].id, 20);
  assert_int_equal(a.after[0].prev, 10);
  assert_int_equal(a.after[1].id, 30);
  assert_true(a.has_tail);
  assert_int_equal(a.tail.id, 30);
  assert_string_equal(a.tail.json.c_str(), msg(30, 20).c_str());
}

void test_failures(void**) {
  FakeCommands cmds;
  Sink sink;
  rt::Script script = read_script();
  rt::proto::Keys keys("p:");
  std::vector<ChannelRead> reads = {{"a", 0, 0}, {"b", 0, 1}, {"c", 0, 2}, {"d", 0, 3}};
  rt::read_channels(cmds, script, keys, reads, &sink);
  assert_int_equal(cmds.calls.size(), 4);
  assert_string_equal(cmds.calls[3].keys[0].c_str(), "p:{d}:msg_id");
  Replies rp;
  cmds.calls[2].fn(nullptr, cmds.calls[2].priv);  // the connection failed
  cmds.calls[0].fn(rp.string("BUSY Redis is busy", REDIS_REPLY_ERROR), cmds.calls[0].priv);
  cmds.calls[1].fn(rp.string("surprise"), cmds.calls[1].priv);  // not read.lua's shape
  cmds.calls[3].fn(rp.array({rp.integer(-1)}), cmds.calls[3].priv);
  assert_false(sink.got[2][0].ok);
  assert_string_equal(sink.got[2][0].error.c_str(), "redis unavailable");
  assert_false(sink.got[0][0].ok);
  assert_string_equal(sink.got[0][0].error.c_str(), "redis error: BUSY Redis is busy");
  assert_false(sink.got[1][0].ok);
  assert_string_equal(sink.got[1][0].error.c_str(), "redis error: unexpected reply to read.lua");
  assert_false(sink.got[3][0].ok);
  assert_int_equal(sink.order.size(), 4);
}

void test_all_down_fails_each_at_once(void**) {
  FakeCommands cmds;
  cmds.down["a"] = cmds.down["b"] = true;
  Sink sink;
  rt::Script script = read_script();
  rt::proto::Keys keys;
  rt::read_channels(cmds, script, keys, {{"a", 1, 7}, {"b", 2, 9}}, &sink);
  assert_true(sink.order == std::vector<uint32_t>({7, 9}));
  assert_true(cmds.calls.empty());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_result_per_channel_in_any_order),
      cmocka_unit_test(test_failures),
      cmocka_unit_test(test_all_down_fails_each_at_once),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
