#include "tokenizer/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tokenizer/utf8.h"

namespace handoff {

namespace {

struct CombiningClassRange {
  int32_t first, last;
  int ccc;
};
struct Decomposition {
  int32_t cp;
  int offset, length;
};
struct Composition {
  int32_t first, second, composite;
};
struct CodePointRange {
  int32_t first, last;
};

#include "tokenizer/unicode_nfc_tables.inc"

// Hangul syllables decompose and compose arithmetically (Unicode §3.12).
constexpr int32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                  kSCount = kLCount * kNCount;

int combining_class(int32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = std::end(kCombiningClass);
  const auto* it = std::upper_bound(std::begin(kCombiningClass), end, cp,
                                    [](int32_t c, const CombiningClassRange& r) { return c < r.first; });
  if (it == std::begin(kCombiningClass)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void decompose(int32_t cp, std::vector<int32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const int32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = std::end(kDecomposition);
  const auto* it = std::lower_bound(std::begin(kDecomposition), end, cp,
                                    [](const Decomposition& d, int32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  out.insert(out.end(), kDecompositionData + it->offset, kDecompositionData + it->offset + it->length);
}

int32_t compose(int32_t a, int32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = std::end(kComposition);
  const auto* it = std::lower_bound(std::begin(kComposition), end, std::make_pair(a, b),
                                    [](const Composition& c, const std::pair<int32_t, int32_t>& k) {
                                      return std::make_pair(c.first, c.second) < k;
                                    });
  return it != end && it->first == a && it->second == b ? it->composite : -1;
}

// Whether `cp` may change under NFC or affect its neighbours (see gen_unicode_nfc.py).
bool nfc_unsafe(int32_t cp) {
  if (cp < 0x300) return false;
  const auto* end = std::end(kNfcUnsafe);
  const auto* it = std::upper_bound(std::begin(kNfcUnsafe), end, cp,
                                    [](int32_t c, const CodePointRange& r) { return c < r.first; });
  return it != std::begin(kNfcUnsafe) && cp <= (it - 1)->last;
}

// NFC of one run of valid code points, appended to `out` as UTF-8.
void nfc_run(std::vector<int32_t>& cps, std::string& out) {
  std::vector<int32_t> d;
  d.reserve(cps.size() + 8);
  for (int32_t cp : cps) decompose(cp, d);
  // Canonical ordering: a stable sort of each stretch of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j,
                     [](int32_t x, int32_t y) { return combining_class(x) < combining_class(y); });
    i = j;
  }
  // Canonical composition: each character joins the last starter unless a character between them blocks it
  // (one with combining class 0, or not lower than its own).
  std::vector<int32_t> r;
  r.reserve(d.size());
  int starter = -1, last_ccc = 0;
  for (int32_t cp : d) {
    const int ccc = combining_class(cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<int>(r.size()) - 1 == starter;
      if (adjacent || (last_ccc != 0 && last_ccc < ccc)) {
        const int32_t c = compose(r[starter], cp);
        if (c >= 0) {
          r[starter] = c;
          continue;
        }
      }
    }
    if (ccc == 0) starter = static_cast<int>(r.size());
    last_ccc = ccc;
    r.push_back(cp);
  }
  for (int32_t cp : r) utf8::append(out, cp);
  cps.clear();
}

}  // namespace

std::string unicode_nfc(std::string_view text) {
  // Fast path: text with no character that NFC could touch (all of ASCII, precomposed Latin, CJK, emoji...)
  // is already in NFC.
  bool simple = true;
  for (size_t i = 0; i < text.size() && simple;) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const auto c = utf8::next(text, i);
    simple = c.cp >= 0 && !nfc_unsafe(c.cp);
    i += c.len;
  }
  if (simple) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  std::vector<int32_t> run;
  for (size_t i = 0; i < text.size();) {
    const auto c = utf8::next(text, i);
    if (c.cp < 0) {
      nfc_run(run, out);
      out.append(text.substr(i, c.len));
    } else {
      run.push_back(c.cp);
    }
    i += c.len;
  }
  nfc_run(run, out);
  return out;
}

}  // namespace handoff
