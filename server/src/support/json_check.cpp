#include "json_check.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/protocol.hpp"

namespace rt {

namespace {

class Validator {
 public:
  Validator(std::string_view s, size_t max_depth) : s_(s), max_depth_(max_depth) {}

  // Parses one value starting at pos_ (after whitespace). Iterative: `stack_` holds the
  // open containers ('[' or '{').
  bool value_document() {
    ws();
    if (!value()) return false;
    ws();
    return pos_ == s_.size();
  }

 private:
  bool value() {
    for (;;) {
      // Parse one scalar or open a container.
      if (pos_ >= s_.size()) return false;
      char c = s_[pos_];
      if (c == '[' || c == '{') {
        if (stack_.size() >= max_depth_) return false;
        stack_.push_back(c);
        if (c == '{') key_start_.push_back(keys_.size());
        pos_++;
        ws();
        if (pos_ < s_.size() && s_[pos_] == (c == '[' ? ']' : '}')) {
          pos_++;
          stack_.pop_back();
          if (c == '{') key_start_.pop_back();
        } else {
          if (c == '{' && !member_key()) return false;
          continue;  // parse the first element / member value
        }
      } else if (!scalar()) {
        return false;
      }
      // After a complete value: close containers or move to the next element.
      for (;;) {
        if (stack_.empty()) return true;
        ws();
        if (pos_ >= s_.size()) return false;
        char open = stack_.back();
        char d = s_[pos_];
        if (d == ',') {
          pos_++;
          ws();
          if (open == '{' && !member_key()) return false;
          break;  // next value
        }
        if (d == (open == '[' ? ']' : '}')) {
          pos_++;
          if (open == '{' && !close_object()) return false;
          stack_.pop_back();
          continue;
        }
        return false;
      }
    }
  }

  // "key" ws : ws (the decoded key joins keys_, for the duplicate check)
  bool member_key() {
    size_t start = pos_;
    if (pos_ >= s_.size() || s_[pos_] != '"' || !string(true)) return false;
    keys_.push_back(decode(s_.substr(start + 1, pos_ - start - 2)));
    ws();
    if (pos_ >= s_.size() || s_[pos_] != ':') return false;
    pos_++;
    ws();
    return true;
  }

  bool scalar() {
    char c = s_[pos_];
    if (c == '"') return string(false);
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    if (s_.compare(pos_, 4, "true") == 0) { pos_ += 4; return true; }
    if (s_.compare(pos_, 5, "false") == 0) { pos_ += 5; return true; }
    if (s_.compare(pos_, 4, "null") == 0) { pos_ += 4; return true; }
    return false;
  }

  bool digits() {
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') pos_++;
    return pos_ > start;
  }

  bool number() {
    size_t start = pos_;
    bool exponent = false;
    if (s_[pos_] == '-') pos_++;
    if (pos_ >= s_.size()) return false;
    if (s_[pos_] == '0') {
      pos_++;
    } else if (!digits()) {
      return false;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      pos_++;
      if (!digits()) return false;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      exponent = true;
      pos_++;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) pos_++;
      if (!digits()) return false;
    }
    // Any size is fine (integers beyond 64 bits are read as doubles), but not beyond a
    // double's range: rt's readers (jansson, in the server and in the client) refuse 1e400,
    // so a message holding it would make every answer of its channel unreadable.
    if (exponent || pos_ - start > 308) {
      std::string text(s_.substr(start, pos_ - start));
      errno = 0;
      double d = std::strtod(text.c_str(), nullptr);
      if (errno == ERANGE && std::isinf(d)) return false;
    }
    return true;
  }

  // The 4 hex digits after "\u" at pos_ + 1 (pos_ at the 'u'); -1 when malformed.
  long hex4() const {
    if (pos_ + 4 >= s_.size()) return -1;
    long v = 0;
    for (size_t i = 1; i <= 4; i++) {
      int h = hexval(s_[pos_ + i]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    return v;
  }

  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A string at pos_ (the opening quote). Beyond RFC 8259's grammar it refuses what rt's
  // readers (jansson) refuse in valid-looking JSON: escapes of unpaired UTF-16 surrogates
  // (no Unicode text holds them) and \u0000 in an object key (`key`). Leaves pos_ after the
  // closing quote.
  bool string(bool key) {
    pos_++;  // opening quote
    while (pos_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        pos_++;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++pos_ >= s_.size()) return false;
        char e = s_[pos_];
        if (e == 'u') {
          long v = hex4();
          if (v < 0 || (v == 0 && key) || (v >= 0xdc00 && v <= 0xdfff)) return false;
          pos_ += 5;
          if (v >= 0xd800 && v <= 0xdbff) {  // must be followed by an escaped low surrogate
            if (pos_ + 1 >= s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') return false;
            pos_++;
            long lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) return false;
            pos_ += 5;
          }
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
          pos_++;
        } else {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        pos_++;
        continue;
      }
      if (!utf8()) return false;
    }
    return false;
  }

  // One multi-byte UTF-8 sequence at pos_: no overlongs, no surrogates, at most U+10FFFF.
  bool utf8() {
    unsigned char c = static_cast<unsigned char>(s_[pos_]);
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
    else return false;
    if (pos_ + n >= s_.size()) return false;
    for (size_t i = 1; i <= n; i++) {
      unsigned char d = static_cast<unsigned char>(s_[pos_ + i]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    pos_ += n + 1;
    return true;
  }

  // The object whose '}' was just read: refuses duplicate keys (compared decoded, as
  // jansson does: "a" and "\u0061" are the same key), then forgets its keys.
  bool close_object() {
    auto first = keys_.begin() + long(key_start_.back());
    std::sort(first, keys_.end());
    bool unique = std::adjacent_find(first, keys_.end()) == keys_.end();
    keys_.erase(first, keys_.end());
    key_start_.pop_back();
    return unique;
  }

  // The text of a validated string (without its quotes) with its escapes decoded to UTF-8.
  static std::string decode(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); i++) {
      char c = raw[i];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      char e = raw[++i];
      switch (e) {
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          auto hex = [&](size_t at) {
            uint32_t v = 0;
            for (size_t k = 0; k < 4; k++) v = v * 16 + uint32_t(hexval(raw[at + k]));
            return v;
          };
          uint32_t cp = hex(i + 1);
          i += 4;
          if (cp >= 0xd800 && cp <= 0xdbff) {  // validated: a low surrogate escape follows
            cp = 0x10000 + ((cp - 0xd800) << 10) + (hex(i + 3) - 0xdc00);
            i += 6;
          }
          if (cp < 0x80) {
            out.push_back(char(cp));
          } else if (cp < 0x800) {
            out.push_back(char(0xc0 | (cp >> 6)));
            out.push_back(char(0x80 | (cp & 0x3f)));
          } else if (cp < 0x10000) {
            out.push_back(char(0xe0 | (cp >> 12)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(char(0x80 | (cp & 0x3f)));
          } else {
            out.push_back(char(0xf0 | (cp >> 18)));
            out.push_back(char(0x80 | ((cp >> 12) & 0x3f)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(char(0x80 | (cp & 0x3f)));
          }
          break;
        }
        default: out.push_back(e); break;  // " \ /
      }
    }
    return out;
  }

  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) pos_++;
  }

  std::string_view s_;
  size_t max_depth_;
  size_t pos_ = 0;
  std::vector<char> stack_;
  std::vector<std::string> keys_;  // the keys of every open object, innermost last
  std::vector<size_t> key_start_;  // per open object: where its keys start in keys_
};

}  // namespace

bool json_valid(std::string_view text, size_t max_depth) noexcept {
  try {
    Validator v(text, max_depth);
    return v.value_document();
  } catch (...) {
    return false;
  }
}

bool check_message(std::string_view json, uint64_t* id, uint64_t* prev) {
  // The canonical layouts: {"id":<id>,"prev":<prev>,"payload":...} (publish.lua) and the
  // version-1 {"id":<id>,"payload":...}. Each number is digits only, as parse_id takes them.
  auto number = [&](size_t* p, uint64_t* v) {
    size_t start = *p;
    while (*p < json.size() && json[*p] >= '0' && json[*p] <= '9') (*p)++;
    if (*p - start > 1 && json[start] == '0') return false;  // "01" is not JSON
    return *p > start && proto::parse_id(json.substr(start, *p - start), v);
  };
  constexpr std::string_view head = "{\"id\":", prev_key = ",\"prev\":", mid = ",\"payload\":";
  if (json.size() > head.size() + mid.size() + 2 && json.substr(0, head.size()) == head && json.back() == '}') {
    size_t p = head.size();
    uint64_t i = 0, pr = 0;
    bool ok = number(&p, &i) && i >= 1;
    if (ok && json.substr(p, prev_key.size()) == prev_key) {
      p += prev_key.size();
      ok = number(&p, &pr) && pr < i;
    } else {
      pr = i - 1;
    }
    if (ok && json.substr(p, mid.size()) == mid) {
      std::string_view payload = json.substr(p + mid.size(), json.size() - 1 - p - mid.size());
      if (json_valid(payload)) {
        *id = i;
        *prev = pr;
        return true;
      }
    }
  }
  // Not a canonical layout (or more members after the payload): the general check.
  return proto::parse_message(json, id, prev);
}

}  // namespace rt
