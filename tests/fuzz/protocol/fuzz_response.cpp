// Fuzz target: the client's /rt response parser (rt::proto::parse_response).
//
// Mode "raw" (first byte < 128): any body. Never crashes; an accepted body has valid,
// distinct channel names, ids strictly ascending with prev < id, an "ok" never empty, and
// payloads that are valid JSON; rebuilding the body with build_response from what was parsed
// parses back to the same entries.
// Mode "decided": per channel a fuzzed backlog (ids, prev links, breaks) and a client id L
// go through rt::proto::decide, the server's rule, and build_response; the body must parse
// back to exactly the decided entries (status, resume id, reason, ids, prev, payloads).
#include <fuzzer/FuzzedDataProvider.h>
#include <jansson.h>

#include <set>
#include <string>
#include <vector>

#include "../fuzz_check.hpp"
#include "protocol.hpp"

using namespace rt::proto;

namespace {

std::string compact(const std::string& json) {
  json_error_t e;
  json_t* j = json_loadb(json.data(), json.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  FUZZ_CHECK(j != nullptr);
  char* s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
  std::string out = s ? s : "";
  free(s);
  json_decref(j);
  return out;
}

bool same_number_view(const std::string& a, const std::string& b) {
  const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL;
  json_error_t e;
  json_t* x = json_loadb(a.data(), a.size(), flags, &e);
  json_t* y = json_loadb(b.data(), b.size(), flags, &e);
  bool eq = x && y && json_equal(x, y);
  json_decref(x);
  json_decref(y);
  return eq;
}

bool same(const std::vector<ReceivedEntry>& a, const std::vector<ReceivedEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    const ReceivedEntry &x = a[i], &y = b[i];
    if (x.channel != y.channel || x.status != y.status || x.msgs.size() != y.msgs.size()) return false;
    if (x.status == EntryStatus::reset && (x.id != y.id || x.reason != y.reason)) return false;
    for (size_t k = 0; k < x.msgs.size(); k++)
      if (x.msgs[k].id != y.msgs[k].id || x.msgs[k].prev != y.msgs[k].prev ||
          x.msgs[k].payload_json != y.msgs[k].payload_json)
        return false;
  }
  return true;
}

void check_parsed(const std::vector<ReceivedEntry>& entries) {
  std::set<std::string> names;
  for (const ReceivedEntry& e : entries) {
    FUZZ_CHECK(valid_channel_name(e.channel));
    FUZZ_CHECK(names.insert(e.channel).second);
    FUZZ_CHECK(e.status != EntryStatus::ok || !e.msgs.empty());
    FUZZ_CHECK(e.id <= kMaxId);
    uint64_t last = 0;
    for (const ReceivedMessage& m : e.msgs) {
      FUZZ_CHECK(m.id > last && m.id <= kMaxId && m.prev < m.id);
      last = m.id;
      json_error_t err;
      json_t* p = json_loadb(m.payload_json.data(), m.payload_json.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
      FUZZ_CHECK(p != nullptr);
      json_decref(p);
    }
  }
}

// ReceivedEntry -> Entry, for build_response.
std::vector<Entry> to_entries(const std::vector<ReceivedEntry>& in) {
  std::vector<Entry> out;
  for (const ReceivedEntry& r : in) {
    Entry e;
    e.channel = r.channel;
    e.status = r.status;
    e.id = r.id;
    e.reason = r.reason;
    for (const ReceivedMessage& m : r.msgs) e.msgs.push_back(Message{m.id, m.prev, make_message_json(m.id, m.prev, m.payload_json)});
    out.push_back(std::move(e));
  }
  return out;
}

const char* const kPayloads[] = {"null", "1", "-0.5", "\"x\"", "\"\\u0000\\ud83d\\ude00\"", "[1,{\"a\":[]}]",
                                 "{\"comment\":\"hi\",\"n\":12345678901234567890}", "true", "{}", "1e300"};

void decided_mode(FuzzedDataProvider& fdp) {
  std::vector<Entry> entries;
  size_t channels = fdp.ConsumeIntegralInRange<size_t>(0, 6);
  for (size_t c = 0; c < channels; c++) {
    // A backlog: ascending ids, each linked to the one before unless the input says break.
    std::vector<Message> backlog;
    uint64_t id = fdp.ConsumeIntegralInRange<uint64_t>(0, 1000);
    uint64_t first_prev = id;
    size_t n = fdp.ConsumeIntegralInRange<size_t>(0, 8);
    for (size_t k = 0; k < n; k++) {
      uint64_t step = fdp.ConsumeIntegralInRange<uint64_t>(1, 3);
      uint64_t prev = fdp.ConsumeBool() ? id : fdp.ConsumeIntegralInRange<uint64_t>(0, id);
      if (k == 0) prev = first_prev;
      id += step;
      const char* payload = kPayloads[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kPayloads) - 1)];
      backlog.push_back(Message{id, prev, make_message_json(id, prev, payload)});
    }
    uint64_t newest = backlog.empty() ? fdp.ConsumeIntegralInRange<uint64_t>(0, 1000) : backlog.back().id;
    if (fdp.ConsumeBool()) newest += fdp.ConsumeIntegralInRange<uint64_t>(0, 2);  // publish in flight
    uint64_t last = fdp.ConsumeIntegralInRange<uint64_t>(0, newest + 3);
    std::vector<Message> after;
    for (const Message& m : backlog)
      if (m.id > last) after.push_back(m);
    Entry e;
    std::string name = "ch" + std::to_string(c);
    if (decide(name, last, newest, after, backlog.empty() ? nullptr : &backlog.back(), &e)) {
      // decide's own promises
      if (e.status == EntryStatus::ok) {
        FUZZ_CHECK(!e.msgs.empty() && e.msgs[0].prev == last);
        for (size_t k = 1; k < e.msgs.size(); k++) FUZZ_CHECK(e.msgs[k].prev == e.msgs[k - 1].id);
      } else {
        FUZZ_CHECK(e.msgs.size() <= 1);
        FUZZ_CHECK(e.id >= newest || (!after.empty() && e.id >= after.back().id));
      }
      entries.push_back(std::move(e));
    } else {
      FUZZ_CHECK(newest == last && (after.empty() || after.back().id <= newest));
    }
  }
  std::string body = build_response(entries);
  std::vector<ReceivedEntry> parsed;
  std::string detail;
  FUZZ_CHECK(parse_response(body, &parsed, &detail));
  check_parsed(parsed);
  FUZZ_CHECK(parsed.size() == entries.size());
  for (size_t i = 0; i < parsed.size(); i++) {
    const Entry& e = entries[i];
    const ReceivedEntry& r = parsed[i];
    FUZZ_CHECK(r.channel == e.channel && r.status == e.status && r.msgs.size() == e.msgs.size());
    if (e.status == EntryStatus::reset) FUZZ_CHECK(r.id == e.id && r.reason == e.reason);
    for (size_t k = 0; k < e.msgs.size(); k++) {
      FUZZ_CHECK(r.msgs[k].id == e.msgs[k].id && r.msgs[k].prev == e.msgs[k].prev);
      std::string payload;
      FUZZ_CHECK(payload_of(e.msgs[k].json, &payload));
      // The same value for a JavaScript reader: one integer beyond 64 bits anywhere in a body
      // makes jansson read every number of that body as a real (see load_json).
      FUZZ_CHECK(same_number_view(r.msgs[k].payload_json, payload));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  if (fdp.ConsumeIntegral<uint8_t>() >= 128) {
    decided_mode(fdp);
    return 0;
  }
  std::string body = fdp.ConsumeRemainingBytesAsString();
  std::vector<ReceivedEntry> parsed;
  std::string detail;
  if (!parse_response(body, &parsed, &detail)) {
    FUZZ_CHECK(parsed.empty() && !detail.empty());
    return 0;
  }
  check_parsed(parsed);
  for (const ReceivedEntry& e : parsed)
    for (const ReceivedMessage& m : e.msgs) FUZZ_CHECK(compact(m.payload_json) == m.payload_json);
  std::string rebuilt = build_response(to_entries(parsed));
  std::vector<ReceivedEntry> again;
  FUZZ_CHECK(parse_response(rebuilt, &again, &detail));
  FUZZ_CHECK(same(parsed, again));
  return 0;
}
