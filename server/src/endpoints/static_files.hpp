// Static files for the demo pages (--web DIR): GET only, no escape from DIR.
#pragma once

#include <string>
#include <string_view>

#include "http_server.hpp"

namespace rt {

// Turns a URL path (still percent-encoded, starting with '/') into a path relative to the
// web root. Refuses (returns false) bad percent-encoding, NUL, backslashes, and any segment
// that is "..", "." or starts with '.' (hidden files). "/" and paths ending in '/' map to
// index.html in that directory.
bool sanitize_static_path(std::string_view url_path, std::string* rel);

// Content-Type for a file name by extension (html, js, mjs, wasm, css, svg, json, png, ...);
// application/octet-stream when unknown.
const char* content_type_for(std::string_view file_name) noexcept;

// Answers GET `url_path` from `root`: 200 with the file, 404 when missing or refused, 500
// when it cannot be read (files over 64 MiB included: demo assets are small).
void serve_static(const std::string& root, http::Request* req, std::string_view url_path) noexcept;

}  // namespace rt
