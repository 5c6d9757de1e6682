#include "targets.hpp"

#include <cstdlib>

#include "http.hpp"

namespace bench {
namespace {

constexpr int kSetupTimeoutMs = 5000;

// Answer of one blocking request, or an error naming `what`.
bool exchange(const TargetConfig& cfg, const std::string& req, const char* what, Response* out,
              std::string* err) {
  std::string e;
  if (!http_exchange(cfg.dst, req, kSetupTimeoutMs, out, &e)) {
    *err = std::string(what) + ": " + e;
    return false;
  }
  if (out->status / 100 != 2) {
    *err = std::string(what) + ": HTTP " + std::to_string(out->status) + " " + out->body.substr(0, 200);
    return false;
  }
  return true;
}

class RtTarget : public Target {
 public:
  explicit RtTarget(TargetConfig cfg) : Target(std::move(cfg)) {}

  std::string publish_request(const std::string& channel, const std::string& body) override {
    return make_post(cfg_.host, "/publish?c=" + channel,
                     "Authorization: Bearer " + cfg_.token + "\r\n", body);
  }

  bool prepare_channel(const std::string& channel, std::string* catchup, std::string* wait,
                       std::string* err) override {
    uint64_t id1 = 0, id2 = 0;
    if (!publish_id(channel, bench_payload("first"), &id1, err) ||
        !publish_id(channel, bench_payload("second"), &id2, err))
      return false;
    *catchup = make_get(cfg_.host, "/rt?c=" + channel + "&m=" + std::to_string(id1), "");
    *wait = make_get(cfg_.host, "/rt?c=" + channel + "&m=" + std::to_string(id2), "");
    Response r;
    if (!exchange(cfg_, *catchup, "catch-up check", &r, err)) return false;
    if (r.body.find("\"second\"") == std::string::npos) {
      *err = "catch-up check: answer lacks the newest message: " + r.body.substr(0, 200);
      return false;
    }
    return true;
  }

  bool prepare_multi(const std::vector<std::string>& channels, std::string* catchup,
                     std::string* wait, std::string* err) override {
    std::vector<uint64_t> ids(channels.size());
    for (size_t i = 0; i < channels.size(); i++)
      if (!publish_id(channels[i], bench_payload("m" + std::to_string(i)), &ids[i], err)) return false;
    uint64_t last = 0;
    if (!publish_id(channels.back(), bench_payload("last"), &last, err)) return false;
    std::string target = "/rt?";
    for (size_t i = 0; i < channels.size(); i++) {
      if (i) target += '&';
      target += "c=" + channels[i] + "&m=" + std::to_string(ids[i]);
    }
    *catchup = make_get(cfg_.host, target, "");
    size_t last_m = target.rfind("&m=");
    *wait = make_get(cfg_.host, target.substr(0, last_m) + "&m=" + std::to_string(last), "");
    Response r;
    if (!exchange(cfg_, *catchup, "multi-channel check", &r, err)) return false;
    if (r.body.find("\"last\"") == std::string::npos) {
      *err = "multi-channel check: answer lacks the newest message: " + r.body.substr(0, 200);
      return false;
    }
    return true;
  }

 private:
  bool publish_id(const std::string& channel, const std::string& body, uint64_t* id, std::string* err) {
    Response r;
    if (!exchange(cfg_, publish_request(channel, body), "publish", &r, err)) return false;
    size_t p = r.body.find("\"id\"");
    size_t colon = p == std::string::npos ? p : r.body.find(':', p);
    if (colon == std::string::npos) {
      *err = "publish: no id in " + r.body.substr(0, 200);
      return false;
    }
    *id = std::strtoull(r.body.c_str() + colon + 1, nullptr, 10);
    return true;
  }
};

class NchanTarget : public Target {
 public:
  explicit NchanTarget(TargetConfig cfg) : Target(std::move(cfg)) {}

  std::string publish_request(const std::string& channel, const std::string& body) override {
    return make_post(cfg_.host, cfg_.prefix + "/pub?c=" + channel, "", body);
  }

  bool prepare_channel(const std::string& channel, std::string* catchup, std::string* wait,
                       std::string* err) override {
    if (!publish(channel, bench_payload("first"), err) || !publish(channel, bench_payload("second"), err))
      return false;
    std::string sub = cfg_.prefix + "/sub?c=" + channel;
    // Walk the queue from the oldest message: first, then second.
    std::string pos1, pos2;
    if (!step(sub, "", "\"first\"", &pos1, err) || !step(sub, pos1, "\"second\"", &pos2, err))
      return false;
    *catchup = make_get(cfg_.host, sub, pos1);
    *wait = make_get(cfg_.host, sub, pos2);
    return true;
  }

  bool prepare_multi(const std::vector<std::string>& channels, std::string* catchup,
                     std::string* wait, std::string* err) override {
    for (size_t i = 0; i < channels.size(); i++)
      if (!publish(channels[i], bench_payload("m" + std::to_string(i)), err)) return false;
    if (!publish(channels.back(), bench_payload("last"), err)) return false;
    std::string path = cfg_.prefix + "/multi/";
    for (size_t i = 0; i < channels.size(); i++) {
      if (i) path += ',';
      path += channels[i];
    }
    // Walk the multiplexed queue from its oldest message until the next answer is "last";
    // the position before it makes a poll that is answered at once with just that message.
    std::string pos, next;
    for (size_t step_no = 0; step_no <= channels.size() + 1; step_no++) {
      Response r;
      if (!exchange(cfg_, make_get(cfg_.host, path, pos), "multi-channel walk", &r, err)) return false;
      if (r.body.find("\"last\"") != std::string::npos) {
        *catchup = make_get(cfg_.host, path, pos);
        std::string end;
        if (!position_of(r, &end, err)) return false;
        *wait = make_get(cfg_.host, path, end);
        return true;
      }
      if (!position_of(r, &pos, err)) return false;
    }
    *err = "multi-channel walk: the last message never came";
    return false;
  }

 private:
  // The If-Modified-Since/If-None-Match lines that continue after answer `r`.
  static bool position_of(const Response& r, std::string* pos, std::string* err) {
    std::string lm = header_value(r.head, "Last-Modified");
    std::string etag = header_value(r.head, "Etag");
    if (lm.empty() && etag.empty()) {
      *err = "nchan answer without Last-Modified/Etag";
      return false;
    }
    *pos = "If-Modified-Since: " + lm + "\r\nIf-None-Match: " + etag + "\r\n";
    return true;
  }

  // GETs `path` from position `from`, expects `marker` in the answer, sets *next.
  bool step(const std::string& path, const std::string& from, const char* marker, std::string* next,
            std::string* err) {
    Response r;
    if (!exchange(cfg_, make_get(cfg_.host, path, from), "subscriber walk", &r, err)) return false;
    if (r.body.find(marker) == std::string::npos) {
      *err = std::string("subscriber walk: expected ") + marker + ", got " + r.body.substr(0, 200);
      return false;
    }
    return position_of(r, next, err);
  }
};

}  // namespace

bool Target::publish(const std::string& channel, const std::string& body, std::string* err) {
  Response r;
  return exchange(cfg_, publish_request(channel, body), "publish", &r, err);
}

std::string bench_payload(const std::string& tag) {
  return "{\"tag\":\"" + tag + "\",\"text\":\"a comment of a typical length\"}";
}

std::unique_ptr<Target> make_target(const TargetConfig& cfg, std::string* err) {
  if (cfg.kind == "rt") return std::make_unique<RtTarget>(cfg);
  if (cfg.kind == "nchan") return std::make_unique<NchanTarget>(cfg);
  *err = "unknown target '" + cfg.kind + "' (rt | nchan)";
  return nullptr;
}

}  // namespace bench
