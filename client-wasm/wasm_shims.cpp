// libc replacements for the wasm build of jansson, which client.mk compiles with
// -Dstrtod=rt_strtod -Dsnprintf=rt_snprintf -Dvsnprintf=rt_vsnprintf (jansson's sources are
// not modified). musl's strtod and printf work in 128-bit long double, which wasm emulates
// in software: together with printf's machinery that is ~14 kB of the module. The browser
// already has correctly rounded conversions (parseFloat, Number.prototype.toExponential),
// so these shims hand the two hard steps to it and do the rest in a few lines.
//
// Scope: jansson's own uses only: strtod on number lexemes it has validated against the
// JSON grammar; printf conversions %d %i %u %x %X %o %c %s %p %g (with flags - 0, width,
// precision incl. '*', length modifiers hh h l ll z j t). Anything else prints '?'.
#include <emscripten/em_macros.h>
#include <emscripten/em_js.h>

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>

EM_JS(double, rt_js_parse_float, (const char* text, int length), {
  return parseFloat(UTF8ToString(text, length));
});

// Writes v.toExponential(digits - 1) ("d.ddde+X") into buf; returns its length.
EM_JS(int, rt_js_to_exponential, (double v, int digits, char* buf, int cap), {
  var s = v.toExponential(digits - 1);
  stringToUTF8(s, buf, cap);
  return s.length;
});

extern "C" double rt_strtod(const char* s, char** end) {
  const char* p = s;
  while (*p == ' ' || (*p >= '\t' && *p <= '\r')) p++;
  const char* start = p;
  if (*p == '+' || *p == '-') p++;
  const char* digits = p;
  size_t n = 0;
  while (*p >= '0' && *p <= '9') p++, n++;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') p++, n++;
  }
  if (n == 0) {  // no digits: no conversion
    if (end) *end = const_cast<char*>(s);
    return 0;
  }
  (void)digits;
  if (*p == 'e' || *p == 'E') {
    const char* q = p + 1;
    if (*q == '+' || *q == '-') q++;
    if (*q >= '0' && *q <= '9') {
      while (*q >= '0' && *q <= '9') q++;
      p = q;
    }
  }
  if (end) *end = const_cast<char*>(p);
  double v = rt_js_parse_float(start, static_cast<int>(p - start));
  if (std::isinf(v)) errno = ERANGE;  // jansson: "real number overflow"
  return v;
}

namespace {

struct Out {
  char* buf;
  size_t size;
  size_t pos = 0;
  void put(char c) {
    if (pos + 1 < size) buf[pos] = c;
    pos++;
  }
  void put(const char* s, size_t n) {
    for (size_t i = 0; i < n; i++) put(s[i]);
  }
};

struct Spec {
  bool left = false, zero = false, alt = false;
  int width = 0;
  int precision = -1;
};

// Emits sign/prefix + body padded to the width (zeros after the prefix with '0').
void emit(Out& o, const Spec& sp, const char* prefix, const char* body, size_t len, bool numeric) {
  size_t plen = std::strlen(prefix);
  size_t total = plen + len;
  size_t pad = sp.width > 0 && static_cast<size_t>(sp.width) > total ? sp.width - total : 0;
  if (!sp.left && !(sp.zero && numeric))
    for (size_t i = 0; i < pad; i++) o.put(' ');
  o.put(prefix, plen);
  if (!sp.left && sp.zero && numeric)
    for (size_t i = 0; i < pad; i++) o.put('0');
  o.put(body, len);
  if (sp.left)
    for (size_t i = 0; i < pad; i++) o.put(' ');
}

void emit_unsigned(Out& o, const Spec& sp, uintmax_t v, unsigned base, bool upper, const char* prefix) {
  char tmp[72];
  size_t n = 0;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    tmp[sizeof tmp - 1 - n++] = digits[v % base];
    v /= base;
  } while (v);
  while (sp.precision >= 0 && n < static_cast<size_t>(sp.precision) && n < 64) tmp[sizeof tmp - 1 - n++] = '0';
  emit(o, sp, prefix, tmp + sizeof tmp - n, n, sp.precision < 0);
}

// %g with precision p, as C specifies it, from the browser's correctly rounded digits.
void emit_g(Out& o, const Spec& sp, double v) {
  const char* sign = std::signbit(v) ? "-" : "";
  if (std::isnan(v)) return emit(o, sp, "", "nan", 3, false);
  if (std::isinf(v)) return emit(o, sp, sign, "inf", 3, false);
  int p = sp.precision < 0 ? 6 : (sp.precision == 0 ? 1 : sp.precision);
  if (p > 40) p = 40;
  char e[64];
  int n = rt_js_to_exponential(std::fabs(v), p, e, sizeof e);
  // e = "d[.ddd]e[+-]X"
  char digits[48];
  int nd = 0, i = 0;
  for (; i < n && e[i] != 'e'; i++)
    if (e[i] != '.') digits[nd++] = e[i];
  int x = 0;
  bool neg = e[i + 1] == '-';
  for (int k = i + 2; k < n; k++) x = x * 10 + (e[k] - '0');
  if (neg) x = -x;
  char body[96];
  int len = 0;
  if (x < -4 || x >= p) {  // exponential: d.ddd e+XX
    body[len++] = digits[0];
    int last = nd - 1;
    if (!sp.alt) while (last > 0 && digits[last] == '0') last--;
    if (last > 0 || sp.alt) body[len++] = '.';
    for (int k = 1; k <= last; k++) body[len++] = digits[k];
    body[len++] = 'e';
    body[len++] = x < 0 ? '-' : '+';
    int ax = x < 0 ? -x : x;
    if (ax >= 100) body[len++] = static_cast<char>('0' + ax / 100);
    body[len++] = static_cast<char>('0' + ax / 10 % 10);
    body[len++] = static_cast<char>('0' + ax % 10);
  } else {  // fixed, p - 1 - x decimals
    char fixed[96];
    int fl = 0, point;
    if (x >= 0) {
      for (int k = 0; k <= x; k++) fixed[fl++] = digits[k];
      point = fl;
      for (int k = x + 1; k < nd; k++) fixed[fl++] = digits[k];
    } else {
      fixed[fl++] = '0';
      point = fl;
      for (int k = 0; k < -x - 1; k++) fixed[fl++] = '0';
      for (int k = 0; k < nd; k++) fixed[fl++] = digits[k];
    }
    int end = fl;
    if (!sp.alt) while (end > point && fixed[end - 1] == '0') end--;
    for (int k = 0; k < point; k++) body[len++] = fixed[k];
    if (end > point || sp.alt) body[len++] = '.';
    for (int k = point; k < end; k++) body[len++] = fixed[k];
  }
  emit(o, sp, sign, body, static_cast<size_t>(len), true);
}

}  // namespace

extern "C" int rt_vsnprintf(char* buf, size_t size, const char* fmt, va_list ap) {
  Out o{buf, size};
  for (const char* f = fmt; *f; f++) {
    if (*f != '%') {
      o.put(*f);
      continue;
    }
    Spec sp;
    for (f++;; f++) {
      if (*f == '-') sp.left = true;
      else if (*f == '0') sp.zero = true;
      else if (*f == '#') sp.alt = true;
      else if (*f != '+' && *f != ' ') break;
    }
    if (*f == '*') {
      sp.width = va_arg(ap, int);
      if (sp.width < 0) sp.left = true, sp.width = -sp.width;
      f++;
    } else {
      while (*f >= '0' && *f <= '9') sp.width = sp.width * 10 + (*f++ - '0');
    }
    if (*f == '.') {
      f++;
      sp.precision = 0;
      if (*f == '*') {
        sp.precision = va_arg(ap, int);
        f++;
      } else {
        while (*f >= '0' && *f <= '9') sp.precision = sp.precision * 10 + (*f++ - '0');
      }
    }
    int lng = 0;  // 0 int, 1 long, 2 long long, 3 size_t/intmax/ptrdiff
    while (*f == 'h') f++;
    if (*f == 'l') {
      lng = 1;
      if (*++f == 'l') lng = 2, f++;
    } else if (*f == 'z' || *f == 'j' || *f == 't') {
      lng = 3;
      f++;
    }
    switch (*f) {
      case 'd':
      case 'i': {
        intmax_t v = lng == 0 ? va_arg(ap, int) : lng == 1 ? va_arg(ap, long)
                   : lng == 2 ? va_arg(ap, long long) : va_arg(ap, intmax_t);
        uintmax_t u = v < 0 ? 0 - static_cast<uintmax_t>(v) : static_cast<uintmax_t>(v);
        emit_unsigned(o, sp, u, 10, false, v < 0 ? "-" : "");
        break;
      }
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        uintmax_t v = lng == 0 ? va_arg(ap, unsigned) : lng == 1 ? va_arg(ap, unsigned long)
                    : lng == 2 ? va_arg(ap, unsigned long long) : va_arg(ap, uintmax_t);
        unsigned base = *f == 'u' ? 10 : *f == 'o' ? 8 : 16;
        emit_unsigned(o, sp, v, base, *f == 'X', "");
        break;
      }
      case 'p':
        emit_unsigned(o, sp, reinterpret_cast<uintptr_t>(va_arg(ap, void*)), 16, false, "0x");
        break;
      case 'c': {
        char c = static_cast<char>(va_arg(ap, int));
        emit(o, sp, "", &c, 1, false);
        break;
      }
      case 's': {
        const char* s = va_arg(ap, const char*);
        if (!s) s = "(null)";
        size_t n = 0;
        while (s[n] && (sp.precision < 0 || n < static_cast<size_t>(sp.precision))) n++;
        emit(o, sp, "", s, n, false);
        break;
      }
      case 'g':
      case 'G':
      case 'e':
      case 'f':
        emit_g(o, sp, va_arg(ap, double));
        break;
      case '%':
        o.put('%');
        break;
      case '\0':
        f--;  // a lone '%' at the end
        break;
      default:
        o.put('?');
        break;
    }
  }
  if (size > 0) buf[o.pos < size ? o.pos : size - 1] = '\0';
  return static_cast<int>(o.pos);
}

extern "C" int rt_snprintf(char* buf, size_t size, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = rt_vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
