#pragma once
// UTF-8 helpers the byte-level tokenizer shares: decode one code point, append one, and repair invalid input
// the way Rust's String::from_utf8_lossy and the WHATWG TextDecoder do (one U+FFFD per maximal invalid
// subpart).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace handoff::utf8 {

// The code point starting at s[i] and its length in bytes; {-1, 1} for an invalid or truncated sequence.
struct CodePoint {
  int32_t cp;
  int len;
};

inline CodePoint next(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return {c, 1};
  int len = 0;
  int32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (excludes overlongs, surrogates)
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {-1, 1};
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return {-1, k};
    const unsigned char t = b(i + k);
    if (k == 1 ? (t < lo || t > hi) : (t < 0x80 || t > 0xBF)) return {-1, k};
    cp = (cp << 6) | (t & 0x3F);
  }
  return {cp, len};
}

inline void append(std::string& out, int32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Valid UTF-8: `s` itself if it is valid, otherwise each maximal invalid subpart replaced by U+FFFD.
inline std::string to_valid(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const CodePoint c = next(s, i);
    if (c.cp < 0)
      out += "\xEF\xBF\xBD";
    else
      out.append(s.substr(i, c.len));
    i += c.len;
  }
  return out;
}

// Number of code points (invalid bytes count one each).
inline size_t length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += next(s, i).len) ++n;
  return n;
}

}  // namespace handoff::utf8
