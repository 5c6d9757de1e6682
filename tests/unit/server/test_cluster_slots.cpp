// Unit tests of server/src/redis/cluster/slots: CRC16 and key slots (hash tags), slot maps
// from CLUSTER SHARDS and CLUSTER SLOTS replies (built from RESP text by hiredis's own
// reader, as they come off the wire), and the redirect errors.
#include "cmocka_wrap.hpp"

#include <hiredis/hiredis.h>

#include "slots.hpp"

namespace {

using namespace rt::cluster;

// The reply hiredis parses from `resp` (freed by the caller), or NULL.
redisReply* parse(const std::string& resp) {
  redisReader* rd = redisReaderCreate();
  redisReaderFeed(rd, resp.data(), resp.size());
  void* r = nullptr;
  if (redisReaderGetReply(rd, &r) != REDIS_OK) r = nullptr;
  redisReaderFree(rd);
  return static_cast<redisReply*>(r);
}

std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }
std::string arr(size_t n) { return "*" + std::to_string(n) + "\r\n"; }
std::string num(long long v) { return ":" + std::to_string(v) + "\r\n"; }

// One CLUSTER SHARDS node entry (RESP2: a flat map).
std::string node(const std::string& ip, long long port, const std::string& role, const std::string& health) {
  return arr(12) + bulk("id") + bulk("abc") + bulk("port") + num(port) + bulk("ip") + bulk(ip) + bulk("endpoint") +
         bulk(ip) + bulk("role") + bulk(role) + bulk("health") + bulk(health);
}

std::string shard(const std::vector<long long>& slots, const std::vector<std::string>& nodes) {
  std::string s = arr(4) + bulk("slots") + arr(slots.size());
  for (long long v : slots) s += num(v);
  s += bulk("nodes") + arr(nodes.size());
  for (const auto& n : nodes) s += n;
  return s;
}

void test_crc16_and_slots(void**) {
  // The check value of CRC16/XMODEM, and the examples of the cluster specification.
  assert_int_equal(crc16("123456789", 9), 0x31C3);
  assert_int_equal(key_slot("foo"), 12182);
  assert_int_equal(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  assert_int_equal(key_slot("{user1000}.following"), key_slot("user1000"));
  assert_int_equal(key_slot("foo{}{bar}"), crc16("foo{}{bar}", 10) & 16383);  // empty tag: whole key
  assert_int_equal(key_slot("foo{{bar}}zap"), key_slot("{bar"));              // up to the first '}'
  assert_int_equal(key_slot("foo{bar}{zap}"), key_slot("bar"));               // the first tag
  assert_int_equal(key_slot("{"), crc16("{", 1) & 16383);
  // A channel's three names share a slot (PROTOCOL.md section 2).
  assert_int_equal(key_slot("channel:{t-1}:msg_id"), key_slot("channel:{t-1}:pubsub"));
  assert_int_equal(key_slot("channel:{t-1}:msg_backlog"), key_slot("t-1"));
}

void test_shards_map(void**) {
  std::string resp = arr(3) +
                     shard({0, 5460}, {node("127.0.0.1", 7000, "master", "online"),
                                       node("127.0.0.1", 7003, "replica", "online")}) +
                     shard({5461, 10922}, {node("127.0.0.1", 7004, "replica", "online"),
                                           node("127.0.0.1", 7001, "master", "online")}) +
                     shard({10923, 12000, 12002, 16383}, {node("", 7002, "master", "online")});
  redisReply* r = parse(resp);
  assert_non_null(r);
  SlotMap m;
  std::string err;
  assert_true(parse_cluster_shards(r, "10.1.1.1", &m, &err));
  freeReplyObject(r);
  assert_int_equal(m.masters.size(), 3);
  assert_int_equal(m.master_of(0)->port, 7000);
  assert_int_equal(m.master_of(5460)->port, 7000);
  assert_int_equal(m.master_of(5461)->port, 7001);  // the master, not the replica listed first
  assert_int_equal(m.master_of(16383)->port, 7002);
  assert_string_equal(m.master_of(16383)->host.c_str(), "10.1.1.1");  // no ip: the node asked
  assert_null(m.master_of(12001));
  assert_int_equal(m.uncovered(), 1);
}

void test_same_map_whichever_node_answers(void**) {
  // Nodes list the shards in their own order: the maps must compare equal.
  std::string a = shard({0, 99}, {node("127.0.0.1", 7001, "master", "online")}),
              b = shard({100, 16383}, {node("127.0.0.1", 7000, "master", "online")});
  SlotMap m1, m2;
  std::string err;
  redisReply* r = parse(arr(2) + a + b);
  assert_true(parse_cluster_shards(r, "h", &m1, &err));
  freeReplyObject(r);
  r = parse(arr(2) + b + a);
  assert_true(parse_cluster_shards(r, "h", &m2, &err));
  freeReplyObject(r);
  assert_true(m1.masters == m2.masters);
  assert_true(m1.owner == m2.owner);
  assert_int_equal(m1.masters[0].port, 7000);
  assert_int_equal(m1.master_of(5)->port, 7001);
}

void test_shards_failed_master_and_errors(void**) {
  // A failed master whose replica has not taken over: its slots have no master.
  std::string resp = arr(2) + shard({0, 8191}, {node("127.0.0.1", 7000, "master", "failed"),
                                                node("127.0.0.1", 7003, "replica", "online")}) +
                     shard({8192, 16383}, {node("127.0.0.1", 7001, "master", "online")});
  redisReply* r = parse(resp);
  SlotMap m;
  std::string err;
  assert_true(parse_cluster_shards(r, "h", &m, &err));
  freeReplyObject(r);
  assert_int_equal(m.masters.size(), 1);
  assert_int_equal(m.uncovered(), 8192);

  // Not shards: an error reply (Redis < 7: unknown subcommand), a bad range, a flat array.
  r = parse("-ERR unknown subcommand 'SHARDS'\r\n");
  assert_false(parse_cluster_shards(r, "h", &m, &err));
  assert_non_null(strstr(err.c_str(), "unknown subcommand"));
  freeReplyObject(r);
  r = parse(arr(1) + shard({0, 16384}, {node("127.0.0.1", 7000, "master", "online")}));
  assert_false(parse_cluster_shards(r, "h", &m, &err));
  assert_non_null(strstr(err.c_str(), "out of 0..16383"));
  freeReplyObject(r);
  r = parse(arr(1) + num(3));
  assert_false(parse_cluster_shards(r, "h", &m, &err));
  freeReplyObject(r);
  assert_false(parse_cluster_shards(nullptr, "h", &m, &err));
}

void test_slots_map(void**) {
  std::string resp = arr(2) + arr(4) + num(0) + num(8000) + arr(3) + bulk("127.0.0.1") + num(7000) + bulk("id0") +
                     arr(3) + bulk("127.0.0.1") + num(7003) + bulk("id3") +
                     arr(3) + num(8001) + num(16383) + arr(2) + bulk("") + num(7001);
  redisReply* r = parse(resp);
  SlotMap m;
  std::string err;
  assert_true(parse_cluster_slots(r, "seed", &m, &err));
  freeReplyObject(r);
  assert_int_equal(m.masters.size(), 2);
  assert_int_equal(m.master_of(8000)->port, 7000);
  assert_int_equal(m.master_of(8001)->port, 7001);
  assert_string_equal(m.master_of(8001)->host.c_str(), "seed");
  assert_int_equal(m.uncovered(), 0);
  r = parse(arr(1) + arr(2) + num(0) + num(1));
  assert_false(parse_cluster_slots(r, "seed", &m, &err));
  freeReplyObject(r);
}

void test_redirects(void**) {
  redisReply* r = parse("-MOVED 3999 127.0.0.1:6381\r\n");
  Redirect d = classify(r, "origin");
  freeReplyObject(r);
  assert_int_equal(int(d.kind), int(ErrorKind::moved));
  assert_int_equal(d.slot, 3999);
  assert_string_equal(d.to.host.c_str(), "127.0.0.1");
  assert_int_equal(d.to.port, 6381);

  r = parse("-ASK 12 :7005\r\n");  // a node that does not know its own address
  d = classify(r, "origin");
  freeReplyObject(r);
  assert_int_equal(int(d.kind), int(ErrorKind::ask));
  assert_string_equal(d.to.host.c_str(), "origin");
  assert_int_equal(d.to.port, 7005);

  r = parse("-MOVED 1 ::1:7000\r\n");  // IPv6: the port after the last colon
  d = classify(r, "o");
  freeReplyObject(r);
  assert_string_equal(d.to.host.c_str(), "::1");

  for (const char* bad : {"-MOVED 16384 h:1\r\n", "-MOVED x h:1\r\n", "-MOVED 1 h:0\r\n", "-MOVED 1\r\n",
                          "-ERR wrong\r\n", "-ASK 1 h:99999\r\n"}) {
    r = parse(bad);
    assert_int_equal(int(classify(r, "o").kind), int(ErrorKind::other));
    freeReplyObject(r);
  }
  r = parse("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
  assert_int_equal(int(classify(r, "o").kind), int(ErrorKind::tryagain));
  freeReplyObject(r);
  r = parse("-CLUSTERDOWN The cluster is down\r\n");
  assert_int_equal(int(classify(r, "o").kind), int(ErrorKind::clusterdown));
  freeReplyObject(r);
  r = parse(":1\r\n");
  assert_int_equal(int(classify(r, "o").kind), int(ErrorKind::none));
  freeReplyObject(r);
  assert_int_equal(int(classify(nullptr, "o").kind), int(ErrorKind::none));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc16_and_slots),
      cmocka_unit_test(test_shards_map),
      cmocka_unit_test(test_same_map_whichever_node_answers),
      cmocka_unit_test(test_shards_failed_master_and_errors),
      cmocka_unit_test(test_slots_map),
      cmocka_unit_test(test_redirects),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
