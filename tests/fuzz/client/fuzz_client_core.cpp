// Fuzz target: the client core (client-wasm/src/client_core) driven by a fuzzed sequence of
// host events against a model server that answers with the server's own rule
// (rt::proto::decide + build_response) over per-channel histories that the input grows,
// flushes and trims. Invariants, checked after every event:
//   - each message reaches the page at most once, and per channel message ids increase;
//   - chains are honoured: a delivered message's prev is the id the client stood at (the
//     previous message, the latest reset, or what the page said it had seen);
//   - the core's last id per channel is the last one it handed to the page;
//   - a poll is started once, aborted or answered at most once; never two polls in flight
//     for one channel; a started poll carries the current last id of each of its channels
//     and stays within the URL budget (unless it holds a single channel);
//   - a timer is armed whenever work is pending (a poll in flight, or, online, a wanted
//     channel without a poll), and no poll outlives its deadline once the timer fired;
//   - reports about aborted or unknown polls change nothing.
// The model server also sends "ok" lists with a gap (a buggy or mixed server): the core
// checks chains itself (PROTOCOL.md section 6: a break becomes a `lost` reset).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../fuzz_check.hpp"
#include "client_core.hpp"
#include "poll_planner.hpp"
#include "protocol.hpp"
#include "response_text.hpp"
#include "scroll_selector.hpp"

using namespace rt::client;
namespace proto = rt::proto;

namespace {

const char* const kNames[] = {"a", "b", "thread.1", "s:2", "x-3", "front_9", "c", "d"};
constexpr size_t kNumNames = sizeof(kNames) / sizeof(kNames[0]);
using NameSet = uint32_t;  // a set of kNames, by index

// The index of `name` in kNames, or -1. The harness keeps its per-channel state in arrays
// by this index (no maps of strings, built and freed on every input).
int name_index(std::string_view name) {
  for (size_t i = 0; i < kNumNames; i++)
    if (name == kNames[i]) return int(i);
  return -1;
}

// The model server: one history per channel, ids never reissued (like PROTOCOL.md v2).
struct ModelChannel {
  std::vector<proto::Message> backlog;  // newest `cap` messages
  uint64_t n = 0;                       // msg_id (0 after a flush)
  uint64_t high = 0;                    // every id ever issued is <= high
  size_t cap = 4;
};

struct Poll {
  std::string url;
  std::vector<size_t> channels;  // kNames indices, in the URL's order
  rt::client::Millis started = 0;
};

struct Harness {
  explicit Harness(Config c) : cfg(c), core(std::move(c)) {}

  Config cfg;
  ClientCore core;
  Millis now = 1000;
  Millis timer_at = -1;
  bool online = true, closed = false;
  std::map<uint64_t, Poll> in_flight;
  std::set<uint64_t> finished;  // polls aborted or answered
  uint64_t max_poll_id = 0;
  // Per channel, by kNames index:
  ModelChannel server[kNumNames];
  std::map<uint64_t, uint64_t> prev_of[kNumNames];  // what the model sent: id -> prev
  uint64_t cursor[kNumNames] = {};                  // the page's view: last id
  std::set<uint64_t> delivered[kNumNames];
  int subs[kNumNames] = {};
  bool scroll_active = false;
  std::vector<ScrollItem> scroll_items;
  NameSet scroll_set = 0;
  Millis scroll_settle = 1000;
  size_t scroll_closest = 40;
  bool measure_pending = false;

  void snapshot() {
    for (size_t i = 0; i < kNumNames; i++) cursor[i] = core.last_id(kNames[i]);
  }

  NameSet wanted() const {
    NameSet w = scroll_set;
    for (size_t i = 0; i < kNumNames; i++)
      if (subs[i] > 0) w |= NameSet(1) << i;
    return w;
  }

  // The valid names among `items` (all are kNames: make_items uses no other valid name).
  static NameSet valid_names(const std::vector<ScrollItem>& items) {
    NameSet s = 0;
    for (const ScrollItem& it : items)
      if (proto::valid_channel_name(it.channel)) {
        int i = name_index(it.channel);
        FUZZ_CHECK(i >= 0);
        s |= NameSet(1) << i;
      }
    return s;
  }

  // Carries out one event's actions and checks the invariants.
  // `planned`: the event applied any pending change of the channel set (a timer event), so
  // the polls in flight are exactly for wanted channels.
  void take(const Actions& acts, bool planned = false) {
    // Polls started by these actions, with the positions their URLs carry.
    std::vector<std::pair<uint64_t, std::vector<proto::ChannelPos>>> started;
    for (const Action& a : acts) {
      switch (a.kind) {
        case ActionKind::start_poll: {
          FUZZ_CHECK(!closed);
          FUZZ_CHECK(a.poll_id > max_poll_id);  // never reused
          max_poll_id = a.poll_id;
          Poll p;
          p.url = a.url;
          p.started = now;
          size_t q = a.url.find('?');
          FUZZ_CHECK(q != std::string::npos);
          std::vector<proto::ChannelPos> pos;
          std::string detail;
          FUZZ_CHECK(proto::parse_rt_query(std::string_view(a.url).substr(q + 1), cfg.max_channels_per_poll, &pos,
                                           &detail) == proto::QueryError::none);
          for (auto& cp : pos) {
            int i = name_index(cp.channel);
            FUZZ_CHECK(i >= 0);  // only channels the page asked for
            p.channels.push_back(size_t(i));
          }
          FUZZ_CHECK(a.url.size() <= cfg.url_budget || pos.size() == 1);
          in_flight.emplace(a.poll_id, std::move(p));
          started.emplace_back(a.poll_id, std::move(pos));
          break;
        }
        case ActionKind::abort_poll:
          FUZZ_CHECK(in_flight.erase(a.poll_id) == 1);
          finished.insert(a.poll_id);
          break;
        case ActionKind::arm_timer:
          timer_at = a.delay_ms < 0 ? -1 : now + a.delay_ms;
          break;
        case ActionKind::message: {
          int ci = name_index(a.channel);
          FUZZ_CHECK(ci >= 0);
          uint64_t& cur = cursor[ci];
          FUZZ_CHECK(a.id > cur);
          FUZZ_CHECK(delivered[ci].insert(a.id).second);
          auto it = prev_of[ci].find(a.id);
          FUZZ_CHECK(it != prev_of[ci].end());  // only what the server sent
          if (it->second != cur)
            std::fprintf(stderr, "chain broken on %s: message %llu (prev %llu) after %llu\n", a.channel.c_str(),
                         (unsigned long long)a.id, (unsigned long long)it->second, (unsigned long long)cur);
          FUZZ_CHECK(it->second == cur);
          cur = a.id;
          break;
        }
        case ActionKind::reset: {
          int ci = name_index(a.channel);
          FUZZ_CHECK(ci >= 0);
          cursor[ci] = a.id;
          break;
        }
        case ActionKind::measure_scroll:
          measure_pending = true;
          break;
        default:  // status (and kinds this target does not drive)
          break;
      }
    }
    for (size_t i = 0; i < kNumNames; i++) FUZZ_CHECK(core.last_id(kNames[i]) == cursor[i]);
    for (const auto& [id, pos] : started)
      for (const auto& cp : pos) FUZZ_CHECK(cp.last_id == core.last_id(cp.channel));
    if (closed) {
      FUZZ_CHECK(in_flight.empty() && timer_at < 0);
      return;
    }
    // Never two polls in flight for one channel; polls only for wanted channels.
    NameSet polled = 0;
    const NameSet w = wanted();
    for (const auto& [id, p] : in_flight)
      for (size_t c : p.channels) {
        const NameSet bit = NameSet(1) << c;
        FUZZ_CHECK(!(polled & bit));
        polled |= bit;
        if (planned) FUZZ_CHECK(w & bit);
      }
    FUZZ_CHECK(online || in_flight.empty());
    bool pending = !in_flight.empty();
    if (online && (w & ~polled)) pending = true;
    if (pending) FUZZ_CHECK(timer_at >= 0);
    std::vector<std::string> urls = core.active_poll_urls();
    FUZZ_CHECK(urls.size() == in_flight.size());
  }

  // --- the model server ---
  void publish(size_t ch, uint64_t step, FuzzedDataProvider& fdp) {
    ModelChannel& m = server[ch];
    uint64_t id = std::max(m.n + 1, m.high + step);
    if (id > proto::kMaxId) return;
    static const char* const payloads[] = {"null", "{\"n\":1}", "\"x\"", "[1,2]"};
    proto::Message msg{id, m.n, proto::make_message_json(id, m.n, payloads[fdp.ConsumeIntegralInRange<int>(0, 3)])};
    m.backlog.push_back(std::move(msg));
    if (m.backlog.size() > m.cap) m.backlog.erase(m.backlog.begin(), m.backlog.end() - long(m.cap));
    m.n = m.high = id;
  }

  std::string answer(const Poll& p, FuzzedDataProvider& fdp) {
    std::vector<proto::Entry> entries;
    for (size_t ci : p.channels) {
      if (fdp.ConsumeIntegralInRange<int>(0, 7) == 0) continue;  // left out of this answer
      const char* ch = kNames[ci];
      ModelChannel& m = server[ci];
      uint64_t last = core.last_id(ch);
      // A racing answer (the server read an older position): may repeat delivered messages.
      if (fdp.ConsumeIntegralInRange<int>(0, 5) == 0)
        for (const proto::Message& msg : m.backlog)
          if (msg.id == last) last = msg.prev;
      std::vector<proto::Message> after;
      for (const proto::Message& msg : m.backlog)
        if (msg.id > last) after.push_back(msg);
      proto::Entry e;
      if (!proto::decide(ch, last, m.n, after, m.backlog.empty() ? nullptr : &m.backlog.back(), &e)) continue;
      if (e.status == proto::EntryStatus::ok && e.msgs.size() >= 2 &&
          fdp.ConsumeIntegralInRange<int>(0, 3) == 0)
        e.msgs.erase(e.msgs.begin() + long(fdp.ConsumeIntegralInRange<size_t>(0, e.msgs.size() - 2)));
      for (const proto::Message& msg : e.msgs) prev_of[ci][msg.id] = msg.prev;
      entries.push_back(std::move(e));
    }
    if (fdp.ConsumeIntegralInRange<int>(0, 9) == 0) {  // a channel the poll did not ask for
      const size_t oi = fdp.ConsumeIntegralInRange<size_t>(0, kNumNames - 1);
      const char* other = kNames[oi];
      if (std::find(p.channels.begin(), p.channels.end(), oi) == p.channels.end()) {
        proto::Entry e;
        e.channel = other;
        e.status = proto::EntryStatus::reset;
        e.id = fdp.ConsumeIntegralInRange<uint64_t>(0, proto::kMaxId);
        entries.push_back(std::move(e));
      }
    }
    return proto::build_response(entries);
  }
};

Config make_config(FuzzedDataProvider& fdp) {
  Config c;
  c.url = UrlShape{"http://127.0.0.1:8080", "/rt"};
  switch (fdp.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: c.url_budget = min_url_budget(c.url); break;
    case 1: c.url_budget = min_url_budget(c.url) + 40; break;
    default: c.url_budget = 4096; break;
  }
  c.max_channels_per_poll = fdp.ConsumeIntegralInRange<size_t>(1, 4);
  if (fdp.ConsumeBool()) c.max_channels_per_poll = 500;
  c.poll_timeout_ms = fdp.ConsumeIntegralInRange<Millis>(1, 30000);
  c.deadline_margin_ms = fdp.ConsumeIntegralInRange<Millis>(0, 5000);
  c.probe_after_ms = fdp.ConsumeIntegralInRange<Millis>(1, 3000);
  c.settle_ms = fdp.ConsumeIntegralInRange<Millis>(0, 2000);
  c.closest = fdp.ConsumeIntegralInRange<size_t>(1, 5);
  c.seed = fdp.ConsumeIntegral<uint64_t>();
  std::string detail;
  FUZZ_CHECK(validate_config(c, &detail));
  return c;
}

std::vector<ScrollItem> make_items(FuzzedDataProvider& fdp) {
  std::vector<ScrollItem> items;
  size_t n = fdp.ConsumeIntegralInRange<size_t>(0, 6);
  for (size_t i = 0; i < n; i++) {
    ScrollItem it;
    it.channel = fdp.ConsumeIntegralInRange<int>(0, 15) == 0 ? std::string("bad name")
                                                              : kNames[fdp.ConsumeIntegralInRange<size_t>(0, kNumNames - 1)];
    double top = fdp.ConsumeIntegralInRange<int>(0, 5000);
    it.rect = Rect{top, 0, top + fdp.ConsumeIntegralInRange<int>(0, 400), 300};
    it.last_id = fdp.ConsumeIntegralInRange<int>(0, 3) == 0 ? fdp.ConsumeIntegralInRange<uint64_t>(0, 50) : 0;
    items.push_back(std::move(it));
  }
  return items;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  Harness h(make_config(fdp));
  for (ModelChannel& m : h.server) m.cap = fdp.ConsumeIntegralInRange<size_t>(1, 6);
  h.snapshot();
  Actions acts;  // one buffer for every event's actions (the core appends to it)
  for (int steps = 0; steps < 200 && fdp.remaining_bytes() > 0 && !h.closed; steps++) {
    acts.clear();
    const size_t ci = fdp.ConsumeIntegralInRange<size_t>(0, kNumNames - 1);
    const char* const ch = kNames[ci];
    uint8_t op = fdp.ConsumeIntegralInRange<uint8_t>(0, 19);
    auto pick_poll = [&]() -> uint64_t {
      if (h.in_flight.empty()) return 0;
      auto it = h.in_flight.begin();
      std::advance(it, long(fdp.ConsumeIntegralInRange<size_t>(0, h.in_flight.size() - 1)));
      return it->first;
    };
    bool reanchor = false;  // the event may raise last ids without telling the page
    // h.cursor equals the core's last ids here: the previous take() checked it.
    switch (op) {
      case 0:
      case 1: {
        uint64_t last = fdp.ConsumeIntegralInRange<int>(0, 3) == 0 ? fdp.ConsumeIntegralInRange<uint64_t>(0, 30) : 0;
        if (h.core.subscribe(h.now, ch, last, false, &acts)) h.subs[ci]++;
        reanchor = true;
        break;
      }
      case 2:
        if (h.core.unsubscribe(h.now, ch, &acts)) {
          FUZZ_CHECK(h.subs[ci] > 0);
          h.subs[ci]--;
        } else {
          FUZZ_CHECK(h.subs[ci] == 0);
        }
        break;
      case 3:
      case 4:
      case 5:
        h.publish(ci, fdp.ConsumeIntegralInRange<uint64_t>(1, 1000), fdp);
        break;
      case 6: {  // Redis lost the channel (flush, expiry, older snapshot)
        ModelChannel& m = h.server[ci];
        m.backlog.clear();
        m.n = 0;
        break;
      }
      case 7:
      case 8:
      case 9: {  // a 200 from the model server
        uint64_t id = pick_poll();
        if (!id) break;
        auto pit = h.in_flight.find(id);
        Poll p = std::move(pit->second);
        h.in_flight.erase(pit);
        std::string body = h.answer(p, fdp);
        h.finished.insert(id);
        on_http_response(h.core, h.now, id, 200, body, -1, &acts);
        break;
      }
      case 10: {  // an error status, a malformed 200, a network error
        uint64_t id = pick_poll();
        if (!id) break;
        h.in_flight.erase(id);
        h.finished.insert(id);
        static const int statuses[] = {200, 200, 400, 404, 408, 413, 429, 500, 502, 503, 504, 0};
        int st = statuses[fdp.ConsumeIntegralInRange<size_t>(0, 11)];
        if (st == 0) {
          h.core.on_network_error(h.now, id, "reset", &acts);
        } else {
          std::string body = st == 200 ? fdp.ConsumeRandomLengthString(64) : std::string("{\"error\":\"x\"}");
          std::vector<proto::ReceivedEntry> parsed;
          std::string detail;
          // Only malformed bodies here: a well-formed one could carry messages never published.
          if (st == 200 && proto::parse_response(body, &parsed, &detail) && !parsed.empty()) body = "{\"x\":";
          Millis retry_after = fdp.ConsumeBool() ? -1 : fdp.ConsumeIntegralInRange<Millis>(0, 600000);
          on_http_response(h.core, h.now, id, st, body, retry_after, &acts);
        }
        break;
      }
      case 11: {  // late reports about polls that are no longer in flight
        if (h.finished.empty()) break;
        auto it = h.finished.begin();
        std::advance(it, long(fdp.ConsumeIntegralInRange<size_t>(0, h.finished.size() - 1)));
        if (fdp.ConsumeBool())
          on_http_response(h.core, h.now, *it, 200, "{}", -1, &acts);
        else
          h.core.on_network_error(h.now, *it, "late", &acts);
        FUZZ_CHECK(acts.empty());
        break;
      }
      case 12:
      case 13: {  // time passes; the timer fires when due (late when the tab is throttled)
        Millis dt = fdp.ConsumeIntegralInRange<Millis>(0, 40000);
        if (h.timer_at >= 0 && h.timer_at <= h.now + dt) {
          h.now = std::max(h.now, h.timer_at) + (fdp.ConsumeIntegralInRange<int>(0, 7) == 0 ? 1500 : 0);
          h.timer_at = -1;
          h.core.on_timer(h.now, &acts);
          h.take(acts, true);
          for (const auto& [id, p] : h.in_flight)
            FUZZ_CHECK(p.started + h.cfg.poll_timeout_ms + h.cfg.deadline_margin_ms > h.now);
          acts.clear();
        } else {
          h.now += dt;
        }
        break;
      }
      case 14:
        h.online = !h.online;
        h.core.set_online(h.now, h.online, &acts);
        break;
      case 15:
        h.core.set_visible(h.now, fdp.ConsumeBool(), &acts);
        break;
      case 16: {
        h.scroll_items = make_items(fdp);
        h.scroll_settle = fdp.ConsumeBool() ? -1 : fdp.ConsumeIntegralInRange<Millis>(0, 3000);
        h.scroll_closest = fdp.ConsumeIntegralInRange<size_t>(0, 4);
        h.core.scroll_begin(h.now, h.scroll_items, h.scroll_settle, h.scroll_closest, &acts);
        if (h.scroll_closest == 0) h.scroll_closest = h.cfg.closest;
        h.scroll_set = Harness::valid_names(h.scroll_items);
        h.scroll_active = true;
        reanchor = true;
        break;
      }
      case 17:
        if (fdp.ConsumeBool()) {
          h.core.scroll_moved(h.now, &acts);
        } else if (h.scroll_active) {  // positions measured (asked for or not)
          std::vector<ScrollItem> items = fdp.ConsumeBool() ? h.scroll_items : make_items(fdp);
          double top = fdp.ConsumeIntegralInRange<int>(0, 5000);
          Rect viewport{top, 0, top + 800, 1200};
          h.core.scroll_measured(h.now, items, viewport, &acts);
          std::vector<ScrollItem> valid;
          for (const ScrollItem& it : items)
            if (proto::valid_channel_name(it.channel)) valid.push_back(it);
          h.scroll_set = 0;
          for (const std::string& n : select_closest(valid, viewport, h.scroll_closest)) {
            int i = name_index(n);
            FUZZ_CHECK(i >= 0);
            h.scroll_set |= NameSet(1) << i;
          }
          h.measure_pending = false;
          reanchor = true;
        }
        break;
      case 18:
        h.core.scroll_end(h.now, &acts);
        h.scroll_active = false;
        h.scroll_set = 0;
        break;
      case 19:
        if (fdp.ConsumeIntegralInRange<int>(0, 15) == 0) {
          h.core.close(h.now, &acts);
          h.closed = true;
        }
        break;
    }
    if (reanchor) {
      // Subscribing or scrolling may raise last ids (what the page says it shows) without an
      // action; nothing is delivered by these events.
      for (const Action& a : acts) FUZZ_CHECK(a.kind != ActionKind::message && a.kind != ActionKind::reset);
      h.snapshot();
    }
    h.take(acts);
  }
  return 0;
}
