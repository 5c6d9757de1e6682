// embind bindings: the only file that knows about Emscripten. It exposes the core as class
// `Core` to host.mjs. Every method takes the host's current time, returns the resulting
// actions as JSON text ({"ok":true,"actions":[...]}, or {"ok":false,"error":"...",
// "actions":[...]} when the input was rejected), and catches everything: no C++ exception
// ever crosses into JavaScript (the methods are not declared noexcept only because embind
// 3.1.6 cannot bind noexcept member pointers; each body is a try/catch). The core throws
// nothing but std::bad_alloc; the wasm build has no exception support (smaller), so there
// an allocation failure aborts the module, which host.mjs reports as a fatal error.
#include <emscripten/bind.h>

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

const char kFatal[] = "{\"ok\":false,\"error\":\"internal error\",\"actions\":[]}";

class WasmCore {
 public:
  // Returns "" on success, else why the options were rejected.
  std::string init(const std::string& options_json) {
    try {
      Config cfg;
      std::string detail;
      if (!config_from_json(options_json, &cfg, &detail) || !validate_config(cfg, &detail)) return detail;
      core_ = std::make_unique<ClientCore>(std::move(cfg));
      return "";
    } catch (...) {
      return "internal error";
    }
  }

  template <typename F>
  std::string run(F&& f) noexcept {
    try {
      Actions out;
      if (!core_) return result(false, "not initialised", out);
      std::string error = f(out);
      return result(error.empty(), error, out);
    } catch (...) {
      return kFatal;
    }
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
    try {
      std::string s = "[";
      if (core_)
        for (const std::string& u : core_->active_poll_urls()) {
          if (s.size() > 1) s.push_back(',');
          append_json_string(&s, u);
        }
      s.push_back(']');
      return s;
    } catch (...) {
      return "[]";
    }
  }
  double last_id(const std::string& channel) const {
    return core_ ? static_cast<double>(core_->last_id(channel)) : 0;
  }

 private:
  std::unique_ptr<ClientCore> core_;
};

}  // namespace
}  // namespace rt::client

EMSCRIPTEN_BINDINGS(rt_client) {
  using rt::client::WasmCore;
  emscripten::class_<WasmCore>("Core")
      .constructor<>()
      .function("init", &WasmCore::init)
      .function("subscribe", &WasmCore::subscribe)
      .function("unsubscribe", &WasmCore::unsubscribe)
      .function("scrollBegin", &WasmCore::scroll_begin)
      .function("scrollMoved", &WasmCore::scroll_moved)
      .function("scrollMeasured", &WasmCore::scroll_measured)
      .function("scrollEnd", &WasmCore::scroll_end)
      .function("onResponse", &WasmCore::on_response)
      .function("onNetworkError", &WasmCore::on_network_error)
      .function("onTimer", &WasmCore::on_timer)
      .function("setOnline", &WasmCore::set_online)
      .function("setVisible", &WasmCore::set_visible)
      .function("setPaused", &WasmCore::set_paused)
      .function("close", &WasmCore::close)
      .function("activePollUrls", &WasmCore::active_poll_urls)
      .function("lastId", &WasmCore::last_id);
}
