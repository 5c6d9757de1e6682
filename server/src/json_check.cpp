#include "json_check.hpp"

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
        pos_++;
        ws();
        if (pos_ < s_.size() && s_[pos_] == (c == '[' ? ']' : '}')) {
          pos_++;
          stack_.pop_back();
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
          stack_.pop_back();
          continue;
        }
        return false;
      }
    }
  }

  // "key" ws : ws
  bool member_key() {
    if (pos_ >= s_.size() || s_[pos_] != '"' || !string()) return false;
    ws();
    if (pos_ >= s_.size() || s_[pos_] != ':') return false;
    pos_++;
    ws();
    return true;
  }

  bool scalar() {
    char c = s_[pos_];
    if (c == '"') return string();
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
      pos_++;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) pos_++;
      if (!digits()) return false;
    }
    return true;
  }

  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool string() {
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
          if (pos_ + 4 >= s_.size()) return false;
          for (int i = 1; i <= 4; i++)
            if (hexval(s_[pos_ + size_t(i)]) < 0) return false;
          pos_ += 5;
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

  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) pos_++;
  }

  std::string_view s_;
  size_t max_depth_;
  size_t pos_ = 0;
  std::vector<char> stack_;
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
