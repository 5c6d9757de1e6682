#include "slots.hpp"

#include <algorithm>
#include <cstring>

namespace rt::cluster {

namespace {

// The CCITT polynomial 0x1021, MSB first, initial value 0 (the table of Redis's crc16.c).
struct Crc16Table {
  uint16_t t[256];
  constexpr Crc16Table() : t() {
    for (int i = 0; i < 256; i++) {
      uint16_t c = uint16_t(i << 8);
      for (int b = 0; b < 8; b++) c = (c & 0x8000) ? uint16_t((c << 1) ^ 0x1021) : uint16_t(c << 1);
      t[i] = c;
    }
  }
};
constexpr Crc16Table kTable;

std::string_view str_of(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string_view(r->str, r->len)
                                                                               : std::string_view();
}

bool int_of(const redisReply* r, long long* out) {
  if (r == nullptr) return false;
  if (r->type == REDIS_REPLY_INTEGER) {
    *out = r->integer;
    return true;
  }
  std::string_view s = str_of(r);
  if (s.empty() || s.size() > 18) return false;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool parse_port(std::string_view s, int* port) {
  long long v = 0;
  if (s.empty() || s.size() > 5) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > 65535) return false;
  *port = int(v);
  return true;
}

// A node's announced ip: empty or "?" means "the node you asked".
std::string host_or_seed(std::string_view ip, const std::string& seed_host) {
  return ip.empty() || ip == "?" ? seed_host : std::string(ip);
}

bool assign(SlotMap* m, long long start, long long end, const NodeAddr& master, std::string* error) {
  if (start < 0 || end < start || end >= kSlots) {
    *error = "slot range " + std::to_string(start) + "-" + std::to_string(end) + " out of 0..16383";
    return false;
  }
  uint16_t idx = m->master_index(master);
  for (long long s = start; s <= end; s++) m->owner[size_t(s)] = idx;
  return true;
}

// Masters in address order, so that the same cluster gives the same map whichever node
// was asked (each lists its shards in its own order).
void normalize(SlotMap* m) {
  std::vector<size_t> order(m->masters.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const NodeAddr &x = m->masters[a], &y = m->masters[b];
    return x.host != y.host ? x.host < y.host : x.port < y.port;
  });
  std::vector<uint16_t> new_index(order.size());
  std::vector<NodeAddr> sorted;
  sorted.reserve(order.size());
  for (size_t k = 0; k < order.size(); k++) {
    new_index[order[k]] = uint16_t(k);
    sorted.push_back(std::move(m->masters[order[k]]));
  }
  m->masters = std::move(sorted);
  for (uint16_t& o : m->owner)
    if (o != kNoMaster) o = new_index[o];
}

}  // namespace

uint16_t crc16(const char* buf, size_t len) noexcept {
  uint16_t crc = 0;
  for (size_t i = 0; i < len; i++) crc = uint16_t((crc << 8) ^ kTable.t[((crc >> 8) ^ uint8_t(buf[i])) & 0xff]);
  return crc;
}

uint16_t key_slot(std::string_view key) noexcept {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return uint16_t(crc16(key.data(), key.size()) & (kSlots - 1));
}

uint16_t SlotMap::master_index(const NodeAddr& a) {
  for (size_t i = 0; i < masters.size(); i++)
    if (masters[i] == a) return uint16_t(i);
  masters.push_back(a);
  return uint16_t(masters.size() - 1);
}

size_t SlotMap::uncovered() const noexcept {
  size_t n = 0;
  for (uint16_t o : owner) n += o == kNoMaster ? 1 : 0;
  return n;
}

bool parse_cluster_shards(const redisReply* r, const std::string& seed_host, SlotMap* out, std::string* error) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) {
    *error = r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "CLUSTER SHARDS: not an array";
    return false;
  }
  SlotMap m;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply* shard = r->element[i];
    if (shard->type != REDIS_REPLY_ARRAY || shard->elements % 2 != 0) {
      *error = "CLUSTER SHARDS: a shard is not a map";
      return false;
    }
    const redisReply* slots = nullptr;
    const redisReply* nodes = nullptr;
    for (size_t k = 0; k + 1 < shard->elements; k += 2) {
      std::string_view name = str_of(shard->element[k]);
      if (name == "slots") slots = shard->element[k + 1];
      if (name == "nodes") nodes = shard->element[k + 1];
    }
    if (slots == nullptr || nodes == nullptr || slots->type != REDIS_REPLY_ARRAY || nodes->type != REDIS_REPLY_ARRAY ||
        slots->elements % 2 != 0) {
      *error = "CLUSTER SHARDS: a shard without slots or nodes";
      return false;
    }
    if (slots->elements == 0) continue;  // a shard without slots (a new or drained master)
    NodeAddr master;
    bool found = false;
    for (size_t n = 0; n < nodes->elements && !found; n++) {
      const redisReply* node = nodes->element[n];
      if (node->type != REDIS_REPLY_ARRAY || node->elements % 2 != 0) continue;
      std::string_view ip, endpoint, role, health;
      long long port = 0;
      bool have_port = false;
      for (size_t k = 0; k + 1 < node->elements; k += 2) {
        std::string_view name = str_of(node->element[k]);
        const redisReply* v = node->element[k + 1];
        if (name == "ip") ip = str_of(v);
        else if (name == "endpoint") endpoint = str_of(v);
        else if (name == "role") role = str_of(v);
        else if (name == "health") health = str_of(v);
        else if (name == "port") have_port = int_of(v, &port);
      }
      if (role != "master" || health == "failed" || !have_port || port < 1 || port > 65535) continue;
      master.host = host_or_seed(!ip.empty() ? ip : endpoint, seed_host);
      master.port = int(port);
      found = true;
    }
    if (!found) continue;  // its master failed and no replica took over yet: slots uncovered
    for (size_t k = 0; k + 1 < slots->elements; k += 2) {
      long long start = 0, end = 0;
      if (!int_of(slots->element[k], &start) || !int_of(slots->element[k + 1], &end)) {
        *error = "CLUSTER SHARDS: a slot bound is not an integer";
        return false;
      }
      if (!assign(&m, start, end, master, error)) return false;
    }
  }
  normalize(&m);
  *out = std::move(m);
  return true;
}

bool parse_cluster_slots(const redisReply* r, const std::string& seed_host, SlotMap* out, std::string* error) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) {
    *error = r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "CLUSTER SLOTS: not an array";
    return false;
  }
  SlotMap m;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply* range = r->element[i];
    long long start = 0, end = 0, port = 0;
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 || !int_of(range->element[0], &start) ||
        !int_of(range->element[1], &end) || range->element[2]->type != REDIS_REPLY_ARRAY ||
        range->element[2]->elements < 2 || !int_of(range->element[2]->element[1], &port) || port < 1 || port > 65535) {
      *error = "CLUSTER SLOTS: a range is not [start, end, [ip, port, ...], ...]";
      return false;
    }
    NodeAddr master{host_or_seed(str_of(range->element[2]->element[0]), seed_host), int(port)};
    if (!assign(&m, start, end, master, error)) return false;
  }
  normalize(&m);
  *out = std::move(m);
  return true;
}

Redirect classify(const redisReply* r, const std::string& origin_host) {
  Redirect out;
  if (r == nullptr || r->type != REDIS_REPLY_ERROR) return out;
  std::string_view e(r->str, r->len);
  auto starts = [&](std::string_view p) { return e.size() >= p.size() && e.compare(0, p.size(), p) == 0; };
  if (starts("TRYAGAIN")) {
    out.kind = ErrorKind::tryagain;
    return out;
  }
  if (starts("CLUSTERDOWN")) {
    out.kind = ErrorKind::clusterdown;
    return out;
  }
  bool moved = starts("MOVED "), ask = starts("ASK ");
  out.kind = ErrorKind::other;
  if (!moved && !ask) return out;
  // "<MOVED|ASK> <slot> <host>:<port>" (host may be empty; an IPv6 host holds colons)
  std::string_view rest = e.substr(moved ? 6 : 4);
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos) return out;
  long long slot = 0;
  std::string_view slot_text = rest.substr(0, sp), addr = rest.substr(sp + 1);
  if (slot_text.empty() || slot_text.size() > 5) return out;
  for (char c : slot_text) {
    if (c < '0' || c > '9') return out;
    slot = slot * 10 + (c - '0');
  }
  size_t colon = addr.rfind(':');
  int port = 0;
  if (slot >= kSlots || colon == std::string_view::npos || !parse_port(addr.substr(colon + 1), &port)) return out;
  out.kind = moved ? ErrorKind::moved : ErrorKind::ask;
  out.slot = uint16_t(slot);
  out.to.host = host_or_seed(addr.substr(0, colon), origin_host);
  out.to.port = port;
  return out;
}

}  // namespace rt::cluster
