// The wasm's interface: the only file that knows about Emscripten. It wraps the core as
// WasmCore and exports it as plain C functions (bottom), which rt-core.mjs wraps into class
// `Core` for host.mjs. Every method takes the host's current time, returns the resulting
// actions as JSON text ({"ok":true,"actions":[...]}, or {"ok":false,"error":"...",
// "actions":[...]} when the input was rejected). No C++ exception can cross into
// JavaScript: the core throws nothing but std::bad_alloc, and the wasm is built with
// -fno-exceptions (smaller: no exception classes or typeinfo), so an allocation failure
// aborts the module, which host.mjs reports as a fatal error.
#include <emscripten/emscripten.h>

#include <cmath>
#include <memory>
#include <string>

#include "client_core.hpp"
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

class WasmCore {
 public:
  // Returns "" on success, else why the options were rejected.
  std::string init(const std::string& options_json) {
    Config cfg;
    std::string detail;
    if (!config_from_json(options_json, &cfg, &detail) || !validate_config(cfg, &detail)) return detail;
    core_ = std::make_unique<ClientCore>(std::move(cfg));
    return "";
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
  std::string scroll_begin(double now, const std::string& json, double settle_ms, double closest) {
    return run([&](Actions& out) -> std::string {
      std::vector<ScrollItem> items;
      Rect vp;
      std::string detail;
      if (!scroll_from_json(json, &items, &vp, &detail)) return detail;
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
  std::string scroll_measured(double now, const std::string& json) {
    return run([&](Actions& out) -> std::string {
      std::vector<ScrollItem> items;
      Rect vp;
      std::string detail;
      if (!scroll_from_json(json, &items, &vp, &detail)) return detail;
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
RT_EXPORT const char* rt_init(WasmCore* c, const char* o, size_t on) { return out(c->init(str(o, on))); }
RT_EXPORT const char* rt_subscribe(WasmCore* c, double now, const char* ch, size_t chn, double last,
                                   int from_now) {
  return out(c->subscribe(now, str(ch, chn), last, from_now != 0));
}
RT_EXPORT const char* rt_unsubscribe(WasmCore* c, double now, const char* ch, size_t chn) {
  return out(c->unsubscribe(now, str(ch, chn)));
}
RT_EXPORT const char* rt_scrollBegin(WasmCore* c, double now, const char* j, size_t jn, double settle,
                                     double closest) {
  return out(c->scroll_begin(now, str(j, jn), settle, closest));
}
RT_EXPORT const char* rt_scrollMoved(WasmCore* c, double now) { return out(c->scroll_moved(now)); }
RT_EXPORT const char* rt_scrollMeasured(WasmCore* c, double now, const char* j, size_t jn) {
  return out(c->scroll_measured(now, str(j, jn)));
}
RT_EXPORT const char* rt_scrollEnd(WasmCore* c, double now) { return out(c->scroll_end(now)); }
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
