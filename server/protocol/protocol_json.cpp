// rt wire protocol, the parts that read JSON text with jansson (the server, and the client's
// native builds). The rules themselves are in protocol.cpp (message_ids, ResponseReader), so
// that a host that parses JSON itself (the browser's JSON.parse) applies the same ones.
#include <jansson.h>

#include <memory>

#include "protocol.hpp"

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

// The member `key` of `obj` as the rules see it (absent when obj is not an object). Integers
// become doubles: every id rule is about 0..2^53-1, exact in a double, and anything beyond
// fails it either way.
Value member(const json_t* obj, const char* key) noexcept {
  Value v;
  const json_t* j = json_object_get(obj, key);
  if (!j) return v;
  if (json_is_string(j)) {
    v.kind = Value::Kind::string;
    v.text = std::string_view(json_string_value(j), json_string_length(j));
  } else if (json_is_number(j)) {
    v.kind = Value::Kind::number;
    v.number = json_number_value(j);
  } else {
    v.kind = Value::Kind::other;
  }
  return v;
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

bool json_message_ids(const json_t* msg, uint64_t* id, uint64_t* prev) noexcept {
  return message_ids(member(msg, "id"), member(msg, "prev"), id, prev);
}

}  // namespace

bool parse_message(std::string_view json, uint64_t* id, uint64_t* prev) {
  JsonPtr root(load_json(json, nullptr));
  if (!root || !json_is_object(root.get())) return false;
  if (!json_object_get(root.get(), "payload")) return false;
  return json_message_ids(root.get(), id, prev);
}

bool parse_response(std::string_view body, std::vector<ReceivedEntry>* out, std::string* detail) {
  ResponseReader reader;
  json_error_t err;
  JsonPtr root(load_json(body, &err));
  if (!root) {
    reader.invalid_json(err.text);
  } else if (!json_is_object(root.get())) {
    reader.not_object();
  } else {
    const char* name;
    json_t* value;
    json_object_foreach(root.get(), name, value) {
      const json_t* msgs = json_object_get(value, "msg");
      reader.entry(name, json_is_object(value), member(value, "status"), member(value, "id"),
                   member(value, "reason"), json_is_array(msgs));
      if (!json_is_array(msgs) || reader.failed()) continue;
      size_t i;
      const json_t* m;
      json_array_foreach(msgs, i, m) {
        const json_t* payload = json_object_get(m, "payload");
        reader.message(json_is_object(m), member(m, "id"), member(m, "prev"), payload != nullptr,
                       static_cast<uint32_t>(i), payload ? dump_compact(payload) : std::string());
      }
    }
  }
  return reader.finish(out, detail);
}

bool payload_of(std::string_view message_json, std::string* payload_json) {
  JsonPtr root(load_json(message_json, nullptr));
  uint64_t id, prev;
  if (!root || !json_is_object(root.get()) || !json_message_ids(root.get(), &id, &prev)) return false;
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
