// The bearer token of POST /publish: one value shared by every worker, replaced while the
// server runs (SIGHUP re-reads --publish-token-file: rotation without a restart), compared
// in constant time, never logged.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace rt::publish_token {

// Replaces the token (any thread). Empty: publishing refused (403).
void set(std::string token);

// The current token (any thread); never null, empty when none is configured.
std::shared_ptr<const std::string> current();

}  // namespace rt::publish_token

namespace rt {

// Constant-time comparison of a presented bearer token with the configured one: the time
// depends on the presented length only, never on where the bytes differ or on the
// configured token's length. An empty configured token never matches.
bool token_matches(std::string_view presented, std::string_view expected) noexcept;

}  // namespace rt
