// The wasm's interface: the only file that knows about Emscripten. It wraps the core as
// WasmCore and exports it as plain C functions (bottom), which rt-core.mjs wraps into class
// `Core` for host.mjs. Every event method takes the host's current time, returns the
// resulting actions as JSON text ({"ok":true,"actions":[...]}, or {"ok":false,"error":"...",
// "actions":[...]} when the input was rejected). Nothing is parsed from JSON here: options,
// scroll items and the fields of a /rt response (which host.mjs reads with JSON.parse) come
// in as plain values, staged by calls that return nothing (option, scrollItem, bodyInvalid,
// bodyNotObject, entry, msg) before the call that uses them (init, scroll*, onAnswer). No C++ exception can cross into
// JavaScript: the core throws nothing but std::bad_alloc, and the wasm is built with
// -fno-exceptions (smaller: no exception classes or typeinfo), so an allocation failure
// aborts the module, which host.mjs reports as a fatal error.
#include <emscripten/emscripten.h>

#include <cmath>
#include <memory>
#include <string>

#include "client_core.hpp"
#include "protocol.hpp"
#include "wire_json.hpp"

namespace rt::client {
namespace {

Millis to_millis(double now) noexcept {
  if (!std::isfinite(now) || now < 0) return 0;
  return static_cast<Millis>(now);
}

std::string result(bool ok, const std::string& error, const Actions& actions) {
  std::string s = ok ? "{\"ok\":true" : "{\"ok\":false,\"error\":";
  if (!ok) append_json_string(&s, error);
  s.append(",\"actions\":");
  s.append(actions_to_json(actions));
  s.push_back('}');
  return s;
}

// A value from the host: kind 0 undefined, 1 string, 2 number, 3 anything else.
proto::Value value(int kind, double number, const std::string& text) {
  proto::Value v;
  v.kind = kind == 1 ? proto::Value::Kind::string : kind == 2 ? proto::Value::Kind::number
         : kind == 0 ? proto::Value::Kind::absent : proto::Value::Kind::other;
  v.number = number;
  v.text = text;
  return v;
}

class WasmCore {
 public:
  // One option (before init); the first bad one is what init reports.
  void option(const std::string& key, int kind, double number, const std::string& text) {
    if (option_error_.empty()) set_option(&cfg_, key, value(kind, number, text), &option_error_);
  }
  // Returns "" on success, else why the options were rejected.
  std::string init() {
    std::string detail = option_error_;
    if (!detail.empty() || !validate_config(cfg_, &detail)) return detail;
    core_ = std::make_unique<ClientCore>(std::move(cfg_));
    return "";
  }

  // One scroll item for the next scroll_begin / scroll_measured; the first bad one is what
  // that call reports.
  void scroll_item(const std::string& channel, double top, double left, double bottom, double right, double last_id) {
    const double r[4] = {top, left, bottom, right};
    ScrollItem item;
    if (scroll_error_.empty() && rt::client::scroll_item(items_.size(), channel, r, last_id, &item, &scroll_error_))
      items_.push_back(std::move(item));
  }

  // The fields of a 200's body, as host.mjs walks what JSON.parse made of it (see
  // proto::ResponseReader), for the next on_answer.
  void body_invalid(const std::string& message) { reader_.invalid_json(message); }
  void body_not_object() { reader_.not_object(); }
  void entry(const std::string& channel, bool is_object, int status_kind, const std::string& status, int id_kind,
             double id, int reason_kind, const std::string& reason, bool msg_is_array) {
    reader_.entry(channel, is_object, value(status_kind, 0, status), value(id_kind, id, ""),
                  value(reason_kind, 0, reason), msg_is_array);
  }
  void msg(bool is_object, int id_kind, double id, int prev_kind, double prev, bool has_payload, double ref) {
    reader_.message(is_object, value(id_kind, id, ""), value(prev_kind, prev, ""), has_payload,
                    static_cast<uint32_t>(ref), std::string());
  }

  // Runs one core step and serialises its actions. The step is called through a plain
  // function pointer so that the Actions lifetime and serialising exist once in the wasm,
  // not once per method.
  template <typename F>
  std::string run(F&& f) noexcept {
    return run_step([](Actions& out, void* step) { return (*static_cast<std::remove_reference_t<F>*>(step))(out); }, &f);
  }
  __attribute__((noinline)) std::string run_step(std::string (*call)(Actions&, void*), void* step) noexcept {
    Actions out;
    if (!core_) return result(false, "not initialised", out);
    std::string error = call(out, step);
    return result(error.empty(), error, out);
  }

  // from_now: start at the channel's newest id on the server (last_id ignored).
  std::string subscribe(double now, const std::string& channel, double last_id, bool from_now) {
    return run([&](Actions& out) -> std::string {
      if (!(last_id >= 0 && last_id <= 9007199254740991.0) || last_id != std::floor(last_id))
        return "lastId must be an integer in 0..2^53-1";
      if (!core_->subscribe(to_millis(now), channel, static_cast<uint64_t>(last_id), from_now, &out))
        return "invalid channel name (1 to 128 bytes of A-Z a-z 0-9 _ . : -)";
      return "";
    });
  }
  std::string unsubscribe(double now, const std::string& channel) {
    return run([&](Actions& out) -> std::string {
      return core_->unsubscribe(to_millis(now), channel, &out) ? "" : "not subscribed";
    });
  }
  // settle_ms < 0 and closest < 1 mean "as configured".
  std::string scroll_begin(double now, double settle_ms, double closest) {
    return run([&](Actions& out) -> std::string {
      std::vector<ScrollItem> items;
      std::string detail;
      if (!take_items(&items, &detail)) return detail;
      Millis settle = settle_ms >= 0 && settle_ms < 86400000.0 ? static_cast<Millis>(settle_ms) : -1;
      size_t k = closest >= 1 && closest < 1e9 ? static_cast<size_t>(closest) : 0;
      size_t skipped = core_->scroll_begin(to_millis(now), items, settle, k, &out);
      return skipped ? std::to_string(skipped) + " item(s) with an invalid channel name skipped" : "";
    });
  }
  std::string scroll_moved(double now) {
    return run([&](Actions& out) -> std::string {
      core_->scroll_moved(to_millis(now), &out);
      return "";
    });
  }
  // The viewport [top,left,bottom,right] and the items staged before.
  std::string scroll_measured(double now, double top, double left, double bottom, double right) {
    return run([&](Actions& out) -> std::string {
      std::vector<ScrollItem> items;
      std::string detail;
      const double r[4] = {top, left, bottom, right};
      Rect vp;
      bool ok = take_items(&items, &detail);
      if (!ok || !scroll_viewport(r, &vp, &detail)) return detail;
      size_t skipped = core_->scroll_measured(to_millis(now), items, vp, &out);
      return skipped ? std::to_string(skipped) + " item(s) with an invalid channel name skipped" : "";
    });
  }
  std::string scroll_end(double now) {
    return run([&](Actions& out) -> std::string {
      core_->scroll_end(to_millis(now), &out);
      return "";
    });
  }
  // A 200, its body staged before (entry, msg, ...).
  std::string on_answer(double now, double poll_id, const std::string& retry_after) {
    std::vector<proto::ReceivedEntry> entries;
    std::string detail;
    bool ok = reader_.finish(&entries, &detail);
    return run([&](Actions& out) -> std::string {
      core_->on_answer(to_millis(now), static_cast<uint64_t>(poll_id), ok ? &entries : nullptr, detail,
                       parse_retry_after(retry_after), &out);
      return "";
    });
  }
  // Any other status.
  std::string on_response(double now, double poll_id, int status, const std::string& body,
                          const std::string& retry_after) {
    return run([&](Actions& out) -> std::string {
      core_->on_response(to_millis(now), static_cast<uint64_t>(poll_id), status, body,
                         parse_retry_after(retry_after), &out);
      return "";
    });
  }
  std::string on_network_error(double now, double poll_id, const std::string& detail) {
    return run([&](Actions& out) -> std::string {
      core_->on_network_error(to_millis(now), static_cast<uint64_t>(poll_id), detail, &out);
      return "";
    });
  }
  std::string on_probe(double now, double probe_id, int status) {
    return run([&](Actions& out) -> std::string {
      core_->on_probe(to_millis(now), static_cast<uint64_t>(probe_id), status, &out);
      return "";
    });
  }
  std::string on_timer(double now) {
    return run([&](Actions& out) -> std::string {
      core_->on_timer(to_millis(now), &out);
      return "";
    });
  }
  std::string set_online(double now, bool online) {
    return run([&](Actions& out) -> std::string {
      core_->set_online(to_millis(now), online, &out);
      return "";
    });
  }
  std::string set_visible(double now, bool visible) {
    return run([&](Actions& out) -> std::string {
      core_->set_visible(to_millis(now), visible, &out);
      return "";
    });
  }
  std::string set_paused(double now, bool paused) {
    return run([&](Actions& out) -> std::string {
      core_->set_paused(to_millis(now), paused, &out);
      return "";
    });
  }
  std::string close(double now) {
    return run([&](Actions& out) -> std::string {
      core_->close(to_millis(now), &out);
      return "";
    });
  }
  // JSON array of the URLs of the polls in flight.
  std::string active_poll_urls() const {
    std::string s = "[";
    if (core_)
      for (const std::string& u : core_->active_poll_urls()) {
        if (s.size() > 1) s.push_back(',');
        append_json_string(&s, u);
      }
    s.push_back(']');
    return s;
  }
  double last_id(const std::string& channel) const {
    return core_ ? static_cast<double>(core_->last_id(channel)) : 0;
  }

 private:
  bool take_items(std::vector<ScrollItem>* items, std::string* detail) {
    bool ok = scroll_error_.empty();
    if (ok) *items = std::move(items_);
    else *detail = std::move(scroll_error_);
    items_.clear();
    scroll_error_.clear();
    return ok;
  }

  Config cfg_;
  std::string option_error_;
  std::vector<ScrollItem> items_;
  std::string scroll_error_;
  proto::ResponseReader reader_;
  std::unique_ptr<ClientCore> core_;
};

}  // namespace
}  // namespace rt::client

// --- the C ABI that core.mjs wraps into class `Core` ---------------------------------------
// Plain exports instead of embind: embind's runtime (~8 kB of JavaScript and ~3 kB of wasm,
// gzipped) was a quarter of what a page downloaded. Strings come in as (pointer, length)
// into buffers that core.mjs allocates with malloc and frees after the call; strings go
// out as a NUL-terminated pointer into `g_out`, valid until the next call (JSON text never
// holds a raw NUL: the serialisers escape it). Numbers and booleans pass as they are.
// core.mjs lists the same methods with their argument kinds (its SIGS table): a method
// added here needs its line there.
namespace {
std::string g_out;
using rt::client::WasmCore;
const char* out(std::string s) noexcept {
  g_out = std::move(s);
  return g_out.c_str();
}
std::string str(const char* p, size_t n) { return std::string(p, n); }
}  // namespace

#define RT_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
RT_EXPORT WasmCore* rt_new() { return new WasmCore(); }
RT_EXPORT void rt_delete(WasmCore* c) { delete c; }
RT_EXPORT void rt_option(WasmCore* c, const char* k, size_t kn, int kind, double num, const char* t, size_t tn) {
  c->option(str(k, kn), kind, num, str(t, tn));
}
RT_EXPORT const char* rt_init(WasmCore* c) { return out(c->init()); }
RT_EXPORT const char* rt_subscribe(WasmCore* c, double now, const char* ch, size_t chn, double last,
                                   int from_now) {
  return out(c->subscribe(now, str(ch, chn), last, from_now != 0));
}
RT_EXPORT const char* rt_unsubscribe(WasmCore* c, double now, const char* ch, size_t chn) {
  return out(c->unsubscribe(now, str(ch, chn)));
}
RT_EXPORT void rt_scrollItem(WasmCore* c, const char* ch, size_t chn, double top, double left, double bottom,
                             double right, double last) {
  c->scroll_item(str(ch, chn), top, left, bottom, right, last);
}
RT_EXPORT const char* rt_scrollBegin(WasmCore* c, double now, double settle, double closest) {
  return out(c->scroll_begin(now, settle, closest));
}
RT_EXPORT const char* rt_scrollMoved(WasmCore* c, double now) { return out(c->scroll_moved(now)); }
RT_EXPORT const char* rt_scrollMeasured(WasmCore* c, double now, double top, double left, double bottom,
                                        double right) {
  return out(c->scroll_measured(now, top, left, bottom, right));
}
RT_EXPORT const char* rt_scrollEnd(WasmCore* c, double now) { return out(c->scroll_end(now)); }
RT_EXPORT void rt_bodyInvalid(WasmCore* c, const char* m, size_t mn) { c->body_invalid(str(m, mn)); }
RT_EXPORT void rt_bodyNotObject(WasmCore* c) { c->body_not_object(); }
RT_EXPORT void rt_entry(WasmCore* c, const char* ch, size_t chn, int is_object, int status_kind, const char* st,
                        size_t stn, int id_kind, double id, int reason_kind, const char* r, size_t rn,
                        int msg_is_array) {
  c->entry(str(ch, chn), is_object != 0, status_kind, str(st, stn), id_kind, id, reason_kind, str(r, rn),
           msg_is_array != 0);
}
RT_EXPORT void rt_msg(WasmCore* c, int is_object, int id_kind, double id, int prev_kind, double prev,
                      int has_payload, double ref) {
  c->msg(is_object != 0, id_kind, id, prev_kind, prev, has_payload != 0, ref);
}
RT_EXPORT const char* rt_onAnswer(WasmCore* c, double now, double poll, const char* ra, size_t ran) {
  return out(c->on_answer(now, poll, str(ra, ran)));
}
RT_EXPORT const char* rt_onResponse(WasmCore* c, double now, double poll, int status, const char* b,
                                    size_t bn, const char* ra, size_t ran) {
  return out(c->on_response(now, poll, status, str(b, bn), str(ra, ran)));
}
RT_EXPORT const char* rt_onNetworkError(WasmCore* c, double now, double poll, const char* d, size_t dn) {
  return out(c->on_network_error(now, poll, str(d, dn)));
}
RT_EXPORT const char* rt_onProbe(WasmCore* c, double now, double probe, int status) {
  return out(c->on_probe(now, probe, status));
}
RT_EXPORT const char* rt_onTimer(WasmCore* c, double now) { return out(c->on_timer(now)); }
RT_EXPORT const char* rt_setOnline(WasmCore* c, double now, int on) { return out(c->set_online(now, on != 0)); }
RT_EXPORT const char* rt_setVisible(WasmCore* c, double now, int v) { return out(c->set_visible(now, v != 0)); }
RT_EXPORT const char* rt_setPaused(WasmCore* c, double now, int p) { return out(c->set_paused(now, p != 0)); }
RT_EXPORT const char* rt_close(WasmCore* c, double now) { return out(c->close(now)); }
RT_EXPORT const char* rt_activePollUrls(WasmCore* c) { return out(c->active_poll_urls()); }
RT_EXPORT double rt_lastId(WasmCore* c, const char* ch, size_t chn) { return c->last_id(str(ch, chn)); }
