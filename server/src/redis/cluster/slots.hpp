// Redis Cluster's key space, pure logic (no I/O): CRC16 key slots with hash tags, the slot
// map of the masters parsed from CLUSTER SHARDS (Redis 7) or CLUSTER SLOTS (older), and the
// redirect and retry errors a node answers with (MOVED, ASK, TRYAGAIN, CLUSTERDOWN).
#pragma once

#include <hiredis/hiredis.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rt::cluster {

constexpr uint16_t kSlots = 16384;
constexpr uint16_t kNoMaster = 0xffff;  // a slot no master serves

// CRC16-CCITT (XModem), the checksum of the Redis Cluster specification.
uint16_t crc16(const char* buf, size_t len) noexcept;

// The slot of `key`: CRC16 of the hash tag (the text between the first '{' and the next '}',
// when not empty) or of the whole key, mod 16384.
uint16_t key_slot(std::string_view key) noexcept;

struct NodeAddr {
  std::string host;
  int port = 0;
  bool operator==(const NodeAddr& o) const noexcept { return port == o.port && host == o.host; }
  std::string text() const { return host + ":" + std::to_string(port); }
};

// Which master serves which slot. masters[i] serves every slot s with owner[s] == i.
struct SlotMap {
  std::vector<NodeAddr> masters;
  std::array<uint16_t, kSlots> owner;
  SlotMap() noexcept { owner.fill(kNoMaster); }

  // The index of `a` in masters, added when absent.
  uint16_t master_index(const NodeAddr& a);
  // Slots without a master (0 = the whole key space is served).
  size_t uncovered() const noexcept;
  // The master of `slot`, or NULL.
  const NodeAddr* master_of(uint16_t slot) const noexcept {
    return owner[slot] == kNoMaster ? nullptr : &masters[owner[slot]];
  }
};

// CLUSTER SHARDS (Redis >= 7.0): every shard's slot ranges and its master (role "master",
// health not "failed"). `seed_host` stands in for a master announced without an address
// ("ip" empty or "?", the node the question was sent to). false with *error when the reply
// is not a shard list.
bool parse_cluster_shards(const redisReply* r, const std::string& seed_host, SlotMap* out, std::string* error);

// CLUSTER SLOTS: [start, end, [ip, port, id...], replicas...] per range.
bool parse_cluster_slots(const redisReply* r, const std::string& seed_host, SlotMap* out, std::string* error);

// What an error reply of a data node means for a routed command.
enum class ErrorKind {
  none,         // not an error reply
  moved,        // "MOVED <slot> <host>:<port>": the slot lives elsewhere now
  ask,          // "ASK <slot> <host>:<port>": this key is being migrated, ask there once
  tryagain,     // "TRYAGAIN ...": keys of a multi-key command are split by a migration
  clusterdown,  // "CLUSTERDOWN ...": the cluster cannot serve the slot (for now)
  other,        // any other error: the command's own answer
};

struct Redirect {
  ErrorKind kind = ErrorKind::none;
  uint16_t slot = 0;
  NodeAddr to;  // moved/ask only
};

// Classifies `r` (NULL: none). For MOVED/ASK with an address without host (":port", a node
// that does not know its own address) the host is `origin_host`. A MOVED or ASK that cannot
// be parsed counts as `other`.
Redirect classify(const redisReply* r, const std::string& origin_host);

}  // namespace rt::cluster
