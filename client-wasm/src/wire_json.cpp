#include "wire_json.hpp"

#include <cmath>
#include <cstring>

namespace rt::client {

namespace {

void append_uint(std::string* out, uint64_t v) { out->append(std::to_string(v)); }
void append_int(std::string* out, int64_t v) { out->append(std::to_string(v)); }

// Length of the valid UTF-8 sequence at s[i], or 0 when invalid.
size_t utf8_len(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f;
  else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

// A number that is an integer (in any notation) in [lo, hi].
bool int_in(const proto::Value& v, double lo, double hi, double* out) {
  if (v.kind != proto::Value::Kind::number) return false;
  double d = v.number;
  if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > hi) return false;
  *out = d;
  return true;
}

}  // namespace

void append_json_string(std::string* out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      out->append("\\u00");
      out->push_back(hex[c >> 4]);
      out->push_back(hex[c & 0xf]);
      i++;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      i++;
    } else if (size_t n = utf8_len(s, i)) {
      out->append(s.substr(i, n));
      i += n;
    } else {
      out->append("\\ufffd");
      i++;
    }
  }
  out->push_back('"');
}

std::string actions_to_json(const Actions& actions) {
  std::string o;
  o.push_back('[');
  bool first = true;
  for (const Action& a : actions) {
    if (!first) o.push_back(',');
    first = false;
    switch (a.kind) {
      case ActionKind::start_poll:
        o.append("{\"k\":\"start\",\"poll\":");
        append_uint(&o, a.poll_id);
        o.append(",\"url\":");
        append_json_string(&o, a.url);
        break;
      case ActionKind::abort_poll:
        o.append("{\"k\":\"abort\",\"poll\":");
        append_uint(&o, a.poll_id);
        break;
      case ActionKind::arm_timer:
        o.append("{\"k\":\"timer\",\"ms\":");
        append_int(&o, a.delay_ms);
        break;
      case ActionKind::status:
        o.append("{\"k\":\"status\",\"state\":\"");
        o.append(conn_state_name(a.status.state));
        o.append("\",\"attempt\":");
        append_int(&o, a.status.attempt);
        o.append(",\"retryInMs\":");
        append_int(&o, a.status.retry_in_ms);
        o.append(",\"httpStatus\":");
        append_int(&o, a.status.http_status);
        o.append(",\"reason\":");
        append_json_string(&o, a.status.reason);
        break;
      case ActionKind::message:
        o.append("{\"k\":\"msg\",\"c\":");
        append_json_string(&o, a.channel);
        o.append(",\"id\":");
        append_uint(&o, a.id);
        o.append(",\"p\":");
        append_uint(&o, a.payload_ref);
        o.append(",\"t\":");
        append_uint(&o, a.targets);
        break;
      case ActionKind::reset:
        o.append("{\"k\":\"reset\",\"c\":");
        append_json_string(&o, a.channel);
        o.append(",\"id\":");
        append_uint(&o, a.id);
        o.append(",\"r\":\"");
        o.append(proto::reason_name(a.reason));
        o.push_back('"');
        if (a.has_newest) {
          o.append(",\"newest\":{\"id\":");
          append_uint(&o, a.newest_id);
          o.append(",\"payload\":");
          append_uint(&o, a.payload_ref);
          o.push_back('}');
        } else {
          o.append(",\"newest\":null");
        }
        o.append(",\"t\":");
        append_uint(&o, a.targets);
        break;
      case ActionKind::measure_scroll:
        o.append("{\"k\":\"measure\"");
        break;
      case ActionKind::probe:
        o.append("{\"k\":\"probe\",\"probe\":");
        append_uint(&o, a.poll_id);
        o.append(",\"url\":");
        append_json_string(&o, a.url);
        break;
    }
    o.push_back('}');
  }
  o.push_back(']');
  return o;
}

bool set_option(Config* cfg, std::string_view key, const proto::Value& v, std::string* detail) {
  std::string k(key);
  double d = 0;
  auto bad = [&](const char* what) {
    *detail = "option " + k + " must be " + what;
    return false;
  };
  const double kMaxMs = 86400000.0 * 365;
  if (k == "baseUrl" || k == "path" || k == "probePath") {
    if (v.kind != proto::Value::Kind::string) return bad("a string");
    (k == "baseUrl" ? cfg->url.base_url : k == "path" ? cfg->url.path : cfg->probe_path) = std::string(v.text);
  } else if (k == "urlBudget") {
    if (!int_in(v, 0, 1e9, &d)) return bad("an integer");
    cfg->url_budget = static_cast<size_t>(d);
  } else if (k == "maxChannelsPerPoll") {
    if (!int_in(v, 0, 1e9, &d)) return bad("an integer");
    cfg->max_channels_per_poll = static_cast<size_t>(d);
  } else if (k == "closest") {
    if (!int_in(v, 0, 1e9, &d)) return bad("an integer");
    cfg->closest = static_cast<size_t>(d);
  } else if (k == "seed") {
    if (!int_in(v, 0, 9007199254740991.0, &d)) return bad("a non-negative integer");
    cfg->seed = static_cast<uint64_t>(d);
  } else {
    Millis* target = nullptr;
    if (k == "pollTimeoutMs") target = &cfg->poll_timeout_ms;
    else if (k == "deadlineMarginMs") target = &cfg->deadline_margin_ms;
    else if (k == "probeAfterMs") target = &cfg->probe_after_ms;
    else if (k == "firstRetryMaxMs") target = &cfg->backoff.first_retry_max_ms;
    else if (k == "backoffBaseMs") target = &cfg->backoff.base_ms;
    else if (k == "backoffCapMs") target = &cfg->backoff.cap_ms;
    else if (k == "maxRetryAfterMs") target = &cfg->backoff.max_retry_after_ms;
    else if (k == "settleMs") target = &cfg->settle_ms;
    if (!target) {
      *detail = "unknown option " + k;
      return false;
    }
    if (!int_in(v, -kMaxMs, kMaxMs, &d)) return bad("an integer number of milliseconds");
    *target = static_cast<Millis>(d);
  }
  return true;
}

bool scroll_viewport(const double r[4], Rect* viewport, std::string* detail) {
  for (size_t i = 0; i < 4; i++)
    if (!std::isfinite(r[i])) {
      *detail = "viewport must be [top,left,bottom,right]";
      return false;
    }
  *viewport = Rect{r[0], r[1], r[2], r[3]};
  return true;
}

bool scroll_item(size_t index, std::string_view channel, const double r[4], double last_id, ScrollItem* item,
                 std::string* detail) {
  for (size_t k = 0; k < 4; k++)
    if (!std::isfinite(r[k])) {
      *detail = "item " + std::to_string(index) + " has a non-numeric coordinate";
      return false;
    }
  proto::Value id;
  id.kind = proto::Value::Kind::number;
  id.number = last_id;
  double d;
  if (!int_in(id, 0, 9007199254740991.0, &d)) {
    *detail = "item " + std::to_string(index) + " has an invalid lastId";
    return false;
  }
  item->channel.assign(channel.data(), channel.size());
  item->rect = Rect{r[0], r[1], r[2], r[3]};
  item->last_id = static_cast<uint64_t>(d);
  return true;
}

}  // namespace rt::client
