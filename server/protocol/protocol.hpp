// rt wire protocol, shared by rt-server and the client core (native and wasm).
//
// One place for the rules of ../shared/PROTOCOL.md that both sides apply: channel names,
// ids, the /rt query string, message JSON, the per-channel ok/reset decision, and the
// response body. The server parses queries and builds responses; the client builds queries
// and parses responses; the tests round-trip both through this one module.
//
// No I/O, no clocks, no exceptions thrown (std::bad_alloc aside). The functions that read JSON
// text use jansson and live in protocol_json.cpp; the rest (protocol.cpp) needs no JSON
// library, so the wasm client links only that and parses with the browser's JSON.parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rt::proto {

constexpr uint64_t kMaxId = (uint64_t{1} << 53) - 1;  // ids are exact in a JS number
constexpr size_t kMaxChannelName = 128;

// Decodes the %XX escapes of a URL component into *out ('+' becomes a space when
// `plus_is_space`, as in query strings). False on a malformed escape (*out unspecified).
bool percent_decode(std::string_view in, bool plus_is_space, std::string* out);

// True when `name` is 1..128 bytes of A-Z a-z 0-9 _ . : -
bool valid_channel_name(std::string_view name) noexcept;

// Parses a decimal id in 0..2^53-1: digits only (no sign, no spaces, no hex), at most
// 16 digits. Returns false (and leaves *out alone) for anything else.
bool parse_id(std::string_view text, uint64_t* out) noexcept;

// One requested channel of a poll: its name and the last id the client has seen.
struct ChannelPos {
  std::string channel;
  uint64_t last_id = 0;
};

enum class QueryError {
  none = 0,
  bad_request,  // 400: detail names the parameter
};

// Parses the query string of GET /rt (the part after '?', percent-encoded).
// Pairs of c and m, in order; `cachebreak` (any value, any number of times) is ignored.
// Fails, with `*detail` a sentence naming the parameter, when: c and m do not alternate
// c,m,c,m; an m is not a valid id; a channel name is invalid; a channel repeats; there are
// no channels; there are more than `max_channels`; a parameter is unknown or malformed
// (bad percent-encoding). On failure *out is left empty.
QueryError parse_rt_query(std::string_view query, size_t max_channels,
                          std::vector<ChannelPos>* out, std::string* detail);

// Appends "c=NAME&m=ID" for one channel (with a leading '&' when `first` is false).
// Channel names never need percent-encoding (their alphabet is URL-safe).
void append_query_pair(std::string* out, const ChannelPos& pos, bool first);

// Length in bytes that append_query_pair adds for `pos` (with the leading '&' when !first).
size_t query_pair_length(const ChannelPos& pos, bool first) noexcept;

// A stored message: its id, the id of the message before it, and its exact JSON text
// {"id":<id>,"prev":<prev>,"payload":<value>} (identical in the backlog and on pub/sub;
// relayed verbatim, serialised once). A version-1 message has no "prev": it counts as id - 1.
struct Message {
  uint64_t id = 0;
  uint64_t prev = 0;
  std::string json;
};

// Validates message JSON as stored in Redis: an object with an integer "id" in 1..kMaxId,
// an optional integer "prev" in 0..id-1 (absent: id - 1, a version-1 message) and a
// "payload" member (any JSON value). On success sets *id and *prev and returns true.
bool parse_message(std::string_view json, uint64_t* id, uint64_t* prev);

// Builds the message JSON for `id`, its predecessor `prev` and a payload given as JSON text
// (already validated), in the canonical member order that publish.lua writes.
std::string make_message_json(uint64_t id, uint64_t prev, std::string_view payload_json);

enum class EntryStatus { ok, reset };

// Why a reset: `behind` when the client's id is older than everything the backlog still
// links to (away too long, or a state channel moved on); `lost` when the id is not part of
// the channel's history as Redis now has it (flushed, expired, rolled back, or L > N).
enum class ResetReason { behind, lost };

// "behind" / "lost", as on the wire.
const char* reason_name(ResetReason reason) noexcept;

// One channel's entry in a /rt response.
struct Entry {
  std::string channel;
  EntryStatus status = EntryStatus::ok;
  uint64_t id = 0;                            // reset only: the id to resume from (msg_id)
  ResetReason reason = ResetReason::lost;     // reset only
  std::vector<Message> msgs;  // ok: an unbroken chain from last_id, ascending; reset: newest or none
};

// The per-channel decision of PROTOCOL.md section 3 (version 2).
//   last    = L, the client's m
//   newest  = N, the channel's msg_id (0 when absent)
//   after   = the backlog messages with id > L, ascending (moved from)
//   tail    = the newest backlog message, used for a reset when `after` is empty (may be null)
// Returns false when there is nothing new (N == L). Otherwise fills *entry:
//   ok     when after[0].prev == L, with the longest prefix of `after` in which each
//          message's prev is the id before it (the rest comes with the next poll, as a reset);
//   reset  otherwise, id N, reason `behind` when L < after[0].prev (in a consistent backlog
//          after[0] is then its oldest message), else `lost`; msgs = the newest message.
// An `after` that claims ids above N (a publish landed between reads) still counts as news:
// N is taken as max(N, last id in after).
bool decide(std::string_view channel, uint64_t last, uint64_t newest, std::vector<Message> after,
            const Message* tail, Entry* entry);

// Serialises entries as the /rt response body: {"C":{"status":"ok","msg":[...]},...}, a
// reset as {"status":"reset","id":N,"reason":"lost","msg":[...]}.
// Message JSON is spliced verbatim (it was validated when read). An empty list gives "{}".
std::string build_response(const std::vector<Entry>& entries);

// One channel's entry as the client receives it.
struct ReceivedMessage {
  uint64_t id = 0;
  uint64_t prev = 0;         // the id before it ("prev" absent: id - 1, a version-1 server)
  // The payload, opaque to the rules: its compact JSON text when parse_response read the
  // body; when the host parsed it (the browser's JSON.parse), its handle for the value it
  // keeps (payload_json is then empty). parse_response sets the handle to the message's
  // index in its list.
  std::string payload_json;
  uint32_t payload_ref = 0;
};
struct ReceivedEntry {
  std::string channel;
  EntryStatus status = EntryStatus::ok;
  uint64_t id = 0;                          // reset only: the id to resume from
  ResetReason reason = ResetReason::lost;   // reset only (absent or unknown: lost)
  std::vector<ReceivedMessage> msgs;        // strictly ascending ids
};

// A JSON value as the rules look at it, from whichever parser read the text: its kind and,
// for a number or a string, its value. Numbers are doubles, as JavaScript reads them (every
// id rule is about 0..2^53-1, exact in a double).
struct Value {
  enum class Kind : uint8_t { absent, string, number, other };  // other: null, bool, object, array
  Kind kind = Kind::absent;
  double number = 0;
  std::string_view text;
};

// A message's id and prev by the rules of message JSON: "id" an integer in 1..kMaxId, "prev"
// absent (id - 1, a version-1 message) or an integer in 0..id-1. False when either is not.
bool message_ids(const Value& id, const Value& prev, uint64_t* id_out, uint64_t* prev_out) noexcept;

// The rules of a /rt response body (client side), applied while a JSON parser walks the
// parsed body in document order: parse_response below (jansson), or the browser host
// (JSON.parse, through the wasm's exports). After the first broken rule the rest is ignored.
// A body is malformed when it is not JSON, not an object, or has an invalid channel name, an
// unknown status, a missing or invalid id / prev / msg / payload, ids not strictly ascending,
// an "ok" with no messages. Whether the chain is unbroken (each prev the id before) is the
// client core's check, not a rule here: a break becomes a `lost` reset there.
class ResponseReader {
 public:
  void invalid_json(std::string_view parser_message);  // the text is not JSON
  void not_object();                                   // the body is not an object
  // One member of the body object: its name; whether its value is an object; that object's
  // "status", "id" and "reason" members; whether its "msg" is an array (then message() for
  // each element, in order).
  void entry(std::string_view channel, bool is_object, const Value& status, const Value& id,
             const Value& reason, bool msg_is_array);
  // One element of the current entry's "msg": whether it is an object, its "id" and "prev",
  // whether it has a "payload" member, and that payload (see ReceivedMessage).
  void message(bool is_object, const Value& id, const Value& prev, bool has_payload, uint32_t payload_ref,
               std::string payload_json);
  bool failed() const noexcept { return failed_; }
  // Ends the walk: true with *out the entries for a valid body, else false with *detail
  // (*out empty). The reader is empty afterwards.
  bool finish(std::vector<ReceivedEntry>* out, std::string* detail);

 private:
  bool reject(std::string msg);
  bool end_entry();
  std::vector<ReceivedEntry> entries_;
  std::string error_;
  bool failed_ = false;
};

// Parses a /rt response body (client side) with jansson and the rules of ResponseReader.
// Returns false with *detail on malformed input; *out is then left empty. Never crashes on
// truncated or hostile input.
bool parse_response(std::string_view body, std::vector<ReceivedEntry>* out, std::string* detail);

// Extracts the compact JSON text of the "payload" member of a message JSON.
// Returns false when the message is not valid message JSON.
bool payload_of(std::string_view message_json, std::string* payload_json);

// Builds an error body {"error":"..."} (JSON-escaped).
std::string error_body(std::string_view message);

}  // namespace rt::proto
