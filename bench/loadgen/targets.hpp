// The servers the generator drives, and how each spells the same scenario.
//
//   rt     GET /rt?c=NAME&m=LASTID, POST /publish?c=NAME (Bearer token), positions are ids.
//   nchan  GET PREFIX/sub?c=NAME (long-poll subscriber), POST PREFIX/pub?c=NAME, multi-channel
//          GET PREFIX/multi/A,B,C; positions are the Last-Modified/Etag pair of a previous
//          answer, sent back as If-Modified-Since/If-None-Match.
//   plain  a fixed GET (the nginx floor); only `plain_path` is used.
//
// Every prepare_* call sets a scenario up on fresh channels with blocking requests and checks
// that the server answers the way the scenario needs (catch-up answered at once with the
// newest message), so that a figure never comes from error answers.
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>
#include <vector>

namespace bench {

struct TargetConfig {
  std::string kind;        // rt | nchan | plain
  sockaddr_in dst{};
  std::string host;        // Host header
  std::string prefix;      // nchan: location prefix, e.g. /nchan-r
  std::string token;       // rt: publish token
  std::string plain_path;  // plain: the path to GET
};

class Target {
 public:
  virtual ~Target() = default;
  // Request text of one publish of `body` to `channel`.
  virtual std::string publish_request(const std::string& channel, const std::string& body) = 0;
  // Publishes two messages to the fresh `channel`; sets *catchup to a poll answered at once
  // with the second one, and *wait to a poll held until the next publish.
  virtual bool prepare_channel(const std::string& channel, std::string* catchup, std::string* wait,
                               std::string* err) = 0;
  // Publishes one message to each fresh channel and a second one to the last; sets *catchup to
  // a poll of all channels that is answered at once with only that second message, and *wait
  // to a poll of all channels held until the next publish to any of them.
  virtual bool prepare_multi(const std::vector<std::string>& channels, std::string* catchup,
                             std::string* wait, std::string* err) = 0;
  // Publishes once, blocking; true on a 2xx answer.
  bool publish(const std::string& channel, const std::string& body, std::string* err);

 protected:
  explicit Target(TargetConfig cfg) : cfg_(std::move(cfg)) {}
  TargetConfig cfg_;
};

// Creates the target named by cfg.kind; nullptr (and *err) for an unknown kind.
std::unique_ptr<Target> make_target(const TargetConfig& cfg, std::string* err);

// A small message payload; `tag` makes it recognisable in an answer.
std::string bench_payload(const std::string& tag);

}  // namespace bench
