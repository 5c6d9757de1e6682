// rt wire protocol: see protocol.hpp for the contracts, ../shared/PROTOCOL.md for the rules.
#include "protocol.hpp"

#include <jansson.h>

#include <memory>
#include <unordered_set>

namespace rt::proto {
namespace {

struct JsonDeleter {
  void operator()(json_t* j) const noexcept { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

struct FreeDeleter {
  void operator()(char* p) const noexcept { free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

size_t decimal_length(uint64_t v) noexcept {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Reads an integer member as an id in [min, kMaxId]. False when absent or out of range.
// Accepts an integral real too: documents with integers beyond 64 bits are decoded with
// every number as a real (see load_json), and ids up to 2^53 stay exact as doubles.
bool json_id(const json_t* obj, const char* key, uint64_t min, uint64_t* out) noexcept {
  const json_t* v = json_object_get(obj, key);
  uint64_t u;
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0) return false;
    u = static_cast<uint64_t>(i);
  } else if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d >= 0 && d <= static_cast<double>(kMaxId)) || d != static_cast<double>(static_cast<uint64_t>(d)))
      return false;
    u = static_cast<uint64_t>(d);
  } else {
    return false;
  }
  if (u < min || u > kMaxId) return false;
  *out = u;
  return true;
}

// Reads a message object's id and prev: "id" in 1..kMaxId, "prev" in 0..id-1 when present,
// else id - 1 (a version-1 message). False when either is invalid.
bool message_ids(const json_t* msg, uint64_t* id, uint64_t* prev) noexcept {
  uint64_t i, p;
  if (!json_id(msg, "id", 1, &i)) return false;
  if (json_object_get(msg, "prev") == nullptr) {
    p = i - 1;
  } else if (!json_id(msg, "prev", 0, &p) || p >= i) {
    return false;
  }
  *id = i;
  *prev = p;
  return true;
}

// Parses JSON text the way every reader in rt must: strings may hold \u0000, duplicate keys
// are refused, and a number too large for a 64-bit integer (valid JSON, as a JavaScript page
// would publish it) does not make the document unreadable: the document is then decoded with
// every number as a real, the way JavaScript itself reads it. May return NULL (err filled).
json_t* load_json(std::string_view text, json_error_t* err) noexcept {
  const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
  json_error_t local;
  json_error_t* e = err ? err : &local;
  json_t* root = json_loadb(text.data(), text.size(), flags, e);
  if (!root && json_error_code(e) == json_error_numeric_overflow)
    root = json_loadb(text.data(), text.size(), flags | JSON_DECODE_INT_AS_REAL, e);
  return root;
}

std::string dump_compact(const json_t* j) {
  CString s(json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)));
  return s ? std::string(s.get()) : std::string();
}

}  // namespace

namespace {
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool percent_decode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out->push_back(c);
  }
  return true;
}

bool valid_channel_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxChannelName) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool parse_id(std::string_view text, uint64_t* out) noexcept {
  if (text.empty() || text.size() > 16) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > kMaxId) return false;
  *out = v;
  return true;
}

QueryError parse_rt_query(std::string_view query, size_t max_channels,
                          std::vector<ChannelPos>* out, std::string* detail) {
  out->clear();
  std::unordered_set<std::string> seen;
  std::string key, value;
  bool want_m = false;  // true after a c, until its m
  auto fail = [&](std::string msg) {
    out->clear();
    *detail = std::move(msg);
    return QueryError::bad_request;
  };

  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty()) continue;  // "a=1&&b=2", a trailing '&'

    size_t eq = part.find('=');
    std::string_view raw_key = part.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (!percent_decode(raw_key, true, &key) || !percent_decode(raw_value, true, &value))
      return fail("malformed percent-encoding in the query string");

    if (key == "cachebreak") continue;
    if (key == "c") {
      if (want_m) return fail("parameter c: channel '" + out->back().channel + "' has no m before the next c");
      if (!valid_channel_name(value))
        return fail("parameter c: invalid channel name (1 to 128 bytes of A-Z a-z 0-9 _ . : -)");
      if (!seen.insert(value).second) return fail("parameter c: duplicate channel '" + value + "'");
      if (out->size() >= max_channels)
        return fail("parameter c: too many channels (limit " + std::to_string(max_channels) + ")");
      out->push_back(ChannelPos{value, 0});
      want_m = true;
    } else if (key == "m") {
      if (!want_m) return fail("parameter m: each m must follow its c");
      uint64_t id = 0;
      if (!parse_id(value, &id))
        return fail("parameter m: for channel '" + out->back().channel +
                    "' must be a decimal integer in 0..9007199254740991");
      out->back().last_id = id;
      want_m = false;
    } else {
      std::string shown = key.size() > 32 ? key.substr(0, 32) + "..." : key;
      return fail("unknown parameter '" + shown + "' (expected c, m, cachebreak)");
    }
  }
  if (want_m) return fail("parameter m: channel '" + out->back().channel + "' has no m");
  if (out->empty()) return fail("parameter c: at least one channel is required");
  return QueryError::none;
}

void append_query_pair(std::string* out, const ChannelPos& pos, bool first) {
  if (!first) out->push_back('&');
  out->append("c=");
  out->append(pos.channel);
  out->append("&m=");
  out->append(std::to_string(pos.last_id));
}

size_t query_pair_length(const ChannelPos& pos, bool first) noexcept {
  return (first ? 0 : 1) + 2 + pos.channel.size() + 3 + decimal_length(pos.last_id);
}

bool parse_message(std::string_view json, uint64_t* id, uint64_t* prev) {
  JsonPtr root(load_json(json, nullptr));
  if (!root || !json_is_object(root.get())) return false;
  if (!json_object_get(root.get(), "payload")) return false;
  return message_ids(root.get(), id, prev);
}

std::string make_message_json(uint64_t id, uint64_t prev, std::string_view payload_json) {
  std::string s;
  s.reserve(48 + payload_json.size());
  s.append("{\"id\":");
  s.append(std::to_string(id));
  s.append(",\"prev\":");
  s.append(std::to_string(prev));
  s.append(",\"payload\":");
  s.append(payload_json);
  s.push_back('}');
  return s;
}

const char* reason_name(ResetReason reason) noexcept {
  return reason == ResetReason::behind ? "behind" : "lost";
}

bool decide(std::string_view channel, uint64_t last, uint64_t newest, std::vector<Message> after,
            const Message* tail, Entry* entry) {
  // A publish that landed between reading msg_id and the backlog still counts as news.
  if (!after.empty() && after.back().id > newest) newest = after.back().id;
  if (newest == last) return false;

  entry->channel.assign(channel.data(), channel.size());
  entry->msgs.clear();
  if (!after.empty() && after.front().prev == last) {
    // The chain continues from L: hand out its unbroken part. A break (a message whose
    // predecessor is not the one before it) ends the list; the next poll, from the last id
    // of this one, then gets the reset.
    size_t n = 1;
    while (n < after.size() && after[n].prev == after[n - 1].id) n++;
    after.resize(n);
    entry->status = EntryStatus::ok;
    entry->id = 0;
    entry->msgs = std::move(after);
    return true;
  }
  // L is not where the backlog's chain starts: resume from N.
  entry->status = EntryStatus::reset;
  entry->id = newest;
  entry->reason = (!after.empty() && last < after.front().prev) ? ResetReason::behind : ResetReason::lost;
  if (!after.empty())
    entry->msgs.push_back(std::move(after.back()));
  else if (tail && tail->id <= newest)
    entry->msgs.push_back(*tail);
  return true;
}

std::string build_response(const std::vector<Entry>& entries) {
  size_t size = 2;
  for (const Entry& e : entries) {
    size += e.channel.size() + 64;
    for (const Message& m : e.msgs) size += m.json.size() + 1;
  }
  std::string s;
  s.reserve(size);
  s.push_back('{');
  bool first_entry = true;
  for (const Entry& e : entries) {
    if (!first_entry) s.push_back(',');
    first_entry = false;
    s.push_back('"');
    s.append(e.channel);  // validated names need no escaping
    if (e.status == EntryStatus::ok) {
      s.append("\":{\"status\":\"ok\",\"msg\":[");
    } else {
      s.append("\":{\"status\":\"reset\",\"id\":");
      s.append(std::to_string(e.id));
      s.append(",\"reason\":\"");
      s.append(reason_name(e.reason));
      s.append("\",\"msg\":[");
    }
    bool first_msg = true;
    for (const Message& m : e.msgs) {
      if (!first_msg) s.push_back(',');
      first_msg = false;
      s.append(m.json);
    }
    s.append("]}");
  }
  s.push_back('}');
  return s;
}

bool parse_response(std::string_view body, std::vector<ReceivedEntry>* out, std::string* detail) {
  out->clear();
  auto fail = [&](std::string msg) {
    out->clear();
    *detail = std::move(msg);
    return false;
  };
  json_error_t err;
  JsonPtr root(load_json(body, &err));
  if (!root) return fail(std::string("invalid JSON: ") + err.text);
  if (!json_is_object(root.get())) return fail("not a JSON object");

  const char* name;
  json_t* value;
  json_object_foreach(root.get(), name, value) {
    ReceivedEntry entry;
    entry.channel = name;
    if (!valid_channel_name(entry.channel)) return fail("bad channel name");
    if (!json_is_object(value)) return fail(entry.channel + ": not an object");
    const char* status = json_string_value(json_object_get(value, "status"));
    if (!status) return fail(entry.channel + ": no status");
    std::string_view st(status);
    if (st == "ok") {
      entry.status = EntryStatus::ok;
    } else if (st == "reset") {
      entry.status = EntryStatus::reset;
      if (!json_id(value, "id", 0, &entry.id)) return fail(entry.channel + ": bad reset id");
      // A version-1 server sends no reason; an unknown one (a newer server) is treated as
      // the stronger `lost`, so the page reloads rather than trusting what it has.
      const json_t* reason = json_object_get(value, "reason");
      if (reason && !json_is_string(reason)) return fail(entry.channel + ": bad reset reason");
      const char* rs = json_string_value(reason);
      entry.reason = (rs && std::string_view(rs) == "behind") ? ResetReason::behind : ResetReason::lost;
    } else {
      return fail(entry.channel + ": bad status");
    }
    const json_t* msgs = json_object_get(value, "msg");
    if (!json_is_array(msgs)) return fail(entry.channel + ": no msg array");
    size_t i;
    const json_t* m;
    uint64_t prev = 0;
    json_array_foreach(msgs, i, m) {
      ReceivedMessage rm;
      const json_t* payload = json_object_get(m, "payload");
      if (!json_is_object(m) || !payload || !message_ids(m, &rm.id, &rm.prev))
        return fail(entry.channel + ": bad message");
      if (rm.id <= prev) return fail(entry.channel + ": ids not ascending");
      prev = rm.id;
      rm.payload_json = dump_compact(payload);
      entry.msgs.push_back(std::move(rm));
    }
    if (entry.status == EntryStatus::ok && entry.msgs.empty())
      return fail(entry.channel + ": empty ok");
    out->push_back(std::move(entry));
  }
  return true;
}

bool payload_of(std::string_view message_json, std::string* payload_json) {
  JsonPtr root(load_json(message_json, nullptr));
  uint64_t id, prev;
  if (!root || !json_is_object(root.get()) || !message_ids(root.get(), &id, &prev)) return false;
  const json_t* payload = json_object_get(root.get(), "payload");
  if (!payload) return false;
  *payload_json = dump_compact(payload);
  return true;
}

std::string error_body(std::string_view message) {
  JsonPtr obj(json_object());
  json_t* text = json_stringn(message.data(), message.size());  // NULL when not UTF-8
  if (!obj || !text || json_object_set_new(obj.get(), "error", text) != 0)
    return "{\"error\":\"invalid request\"}";
  return dump_compact(obj.get());
}

}  // namespace rt::proto
