#include "publish_query.hpp"

#include "protocol/protocol.hpp"

namespace rt {

bool parse_publish_query(std::string_view query, uint32_t default_backlog, std::string* channel,
                         uint32_t* backlog, std::string* error) {
  bool have_c = false, have_backlog = false;
  *backlog = default_backlog;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty()) {
      if (amp == query.size()) break;
      continue;
    }
    size_t eq = part.find('=');
    std::string name, value;
    if (!proto::percent_decode(part.substr(0, eq), true, &name) ||
        !proto::percent_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true, &value)) {
      *error = "bad percent-encoding in the query";
      return false;
    }
    if (name == "c") {
      if (have_c) {
        *error = "parameter 'c' given more than once";
        return false;
      }
      if (!proto::valid_channel_name(value)) {
        *error = "parameter 'c': channel names are 1 to 128 bytes of A-Z a-z 0-9 _ . : -";
        return false;
      }
      *channel = value;
      have_c = true;
    } else if (name == "backlog") {
      uint64_t v = 0;
      if (have_backlog || !proto::parse_id(value, &v) || v < 1 || v > 10000) {
        *error = "parameter 'backlog' must be an integer in 1..10000, given once";
        return false;
      }
      *backlog = uint32_t(v);
      have_backlog = true;
    } else if (name == "cachebreak") {
      // ignored
    } else {
      *error = "unknown parameter '" + name.substr(0, 64) + "'";
      return false;
    }
    if (amp == query.size()) break;
  }
  if (!have_c) {
    *error = "missing parameter 'c' (the channel)";
    return false;
  }
  return true;
}

}  // namespace rt
