// rt wire protocol: see protocol.hpp for the contracts, ../shared/PROTOCOL.md for the rules.
#include "protocol.hpp"

#include <memory>
#include <unordered_set>

namespace rt::proto {
namespace {

size_t decimal_length(uint64_t v) noexcept {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// An integer in [min, kMaxId], as a number of any notation (1e3 and 1000.0 are 1000).
bool id_value(const Value& v, uint64_t min, uint64_t* out) noexcept {
  if (v.kind != Value::Kind::number) return false;
  double d = v.number;
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(kMaxId))) return false;
  uint64_t u = static_cast<uint64_t>(d);
  if (static_cast<double>(u) != d) return false;
  *out = u;
  return true;
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

bool message_ids(const Value& id, const Value& prev, uint64_t* id_out, uint64_t* prev_out) noexcept {
  uint64_t i, p;
  if (!id_value(id, 1, &i)) return false;
  if (prev.kind == Value::Kind::absent) {
    p = i - 1;
  } else if (!id_value(prev, 0, &p) || p >= i) {
    return false;
  }
  *id_out = i;
  *prev_out = p;
  return true;
}

bool ResponseReader::reject(std::string msg) {
  if (!failed_) {
    failed_ = true;
    error_ = std::move(msg);
    entries_.clear();
  }
  return false;
}

bool ResponseReader::end_entry() {
  if (!failed_ && !entries_.empty() && entries_.back().status == EntryStatus::ok && entries_.back().msgs.empty())
    return reject(entries_.back().channel + ": empty ok");
  return !failed_;
}

void ResponseReader::invalid_json(std::string_view message) {
  reject("invalid JSON: " + std::string(message));
}

void ResponseReader::not_object() { reject("not a JSON object"); }

void ResponseReader::entry(std::string_view channel, bool is_object, const Value& status, const Value& id,
                           const Value& reason, bool msg_is_array) {
  if (!end_entry()) return;
  ReceivedEntry e;
  e.channel.assign(channel.data(), channel.size());
  if (!valid_channel_name(e.channel)) return void(reject("bad channel name"));
  if (!is_object) return void(reject(e.channel + ": not an object"));
  if (status.kind != Value::Kind::string) return void(reject(e.channel + ": no status"));
  if (status.text == "ok") {
    e.status = EntryStatus::ok;
  } else if (status.text == "reset") {
    e.status = EntryStatus::reset;
    if (!id_value(id, 0, &e.id)) return void(reject(e.channel + ": bad reset id"));
    // A version-1 server sends no reason; an unknown one (a newer server) is treated as
    // the stronger `lost`, so the page reloads rather than trusting what it has.
    if (reason.kind != Value::Kind::absent && reason.kind != Value::Kind::string)
      return void(reject(e.channel + ": bad reset reason"));
    e.reason = reason.kind == Value::Kind::string && reason.text == "behind" ? ResetReason::behind : ResetReason::lost;
  } else {
    return void(reject(e.channel + ": bad status"));
  }
  if (!msg_is_array) return void(reject(e.channel + ": no msg array"));
  entries_.push_back(std::move(e));
}

void ResponseReader::message(bool is_object, const Value& id, const Value& prev, bool has_payload,
                             uint32_t payload_ref, std::string payload_json) {
  if (failed_ || entries_.empty()) return;
  ReceivedEntry& e = entries_.back();
  ReceivedMessage m;
  if (!is_object || !has_payload || !message_ids(id, prev, &m.id, &m.prev)) return void(reject(e.channel + ": bad message"));
  if (!e.msgs.empty() && m.id <= e.msgs.back().id) return void(reject(e.channel + ": ids not ascending"));
  m.payload_ref = payload_ref;
  m.payload_json = std::move(payload_json);
  e.msgs.push_back(std::move(m));
}

bool ResponseReader::finish(std::vector<ReceivedEntry>* out, std::string* detail) {
  out->clear();
  bool ok = end_entry();
  if (ok) *out = std::move(entries_);
  else *detail = std::move(error_);
  entries_.clear();
  error_.clear();
  failed_ = false;
  return ok;
}

}  // namespace rt::proto
