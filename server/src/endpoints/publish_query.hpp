// The query string of POST /publish, parsed without I/O (fuzzed by tests/fuzz/).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rt {

// Parses the query of POST /publish: c (required, valid channel name), backlog (optional,
// 1..10000, default `default_backlog`), cachebreak (ignored). Returns false with *error
// naming the parameter.
bool parse_publish_query(std::string_view query, uint32_t default_backlog, std::string* channel,
                         uint32_t* backlog, std::string* error);

}  // namespace rt
