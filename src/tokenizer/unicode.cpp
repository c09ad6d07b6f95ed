// UTF-8 repair, White_Space, NFC/NFD and the GPT-2 byte alphabet; see unicode.h.
// NFC follows UAX #15: full canonical decomposition (Hangul algorithmically), canonical
// ordering of combining marks, then canonical composition skipping excluded composites.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <unordered_map>

#include "tokenizer/unicode_data.h"

namespace tpro::tok {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Length of the well-formed sequence at s[i], or 0 with *bad_len = the maximal ill-formed
// subpart to replace by one U+FFFD (Unicode 3.9, table 3-7).
size_t valid_seq_at(std::string_view s, size_t i, size_t* bad_len) {
  uint8_t b = uint8_t(s[i]);
  if (b < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    *bad_len = 1;
    return 0;
  }
  size_t j = i + 1;
  for (int k = 0; k < need; ++k, ++j) {
    uint8_t c = j < s.size() ? uint8_t(s[j]) : 0;
    uint8_t l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
    if (j >= s.size() || c < l || c > h) {
      *bad_len = j - i;
      return 0;
    }
  }
  return j - i;
}

}  // namespace

bool utf8_valid(std::string_view s) {
  size_t bad = 0;
  for (size_t i = 0; i < s.size();) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = valid_seq_at(s, i, &bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  if (utf8_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t bad = 0;
  for (size_t i = 0; i < s.size();) {
    size_t n = valid_seq_at(s, i, &bad);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += bad;
    }
  }
  return out;
}

std::vector<uint32_t> to_codepoints(std::string_view s) {
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) cps.push_back(next_codepoint(s, i));
  return cps;
}

bool is_whitespace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// ---- normalization -------------------------------------------------------------------------

namespace {

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr uint32_t kSCount = kLCount * kNCount;

struct NormTables {
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> decomp;  // cp -> (first, second|0)
  std::unordered_map<uint64_t, uint32_t> compose;                      // first<<21|second -> cp
  std::vector<bool> inert;  // true: NFC never changes a string because of this code point

  NormTables() : inert(0x110000, true) {
    for (size_t i = 0; i < kDecompositionCount; ++i) {
      uint64_t v = kDecompositions[i];
      uint32_t cp = uint32_t(v & 0x1FFFFF), a = uint32_t((v >> 21) & 0x1FFFFF);
      uint32_t b = uint32_t((v >> 42) & 0x1FFFFF);
      bool excluded = (v >> 63) != 0;
      decomp[cp] = {a, b};
      inert[cp] = false;
      if (b != 0 && !excluded) {
        compose[(uint64_t(a) << 21) | b] = cp;
        inert[b] = false;
      }
    }
    for (size_t i = 0; i < kCccRangeCount; ++i) {
      uint64_t v = kCccRanges[i];
      for (uint32_t cp = uint32_t(v & 0x1FFFFF); cp <= uint32_t((v >> 21) & 0x1FFFFF); ++cp) inert[cp] = false;
    }
    for (uint32_t cp = kSBase; cp < kSBase + kSCount; ++cp) inert[cp] = false;
    for (uint32_t cp = kVBase; cp < kVBase + kVCount; ++cp) inert[cp] = false;
    for (uint32_t cp = kTBase + 1; cp < kTBase + kTCount; ++cp) inert[cp] = false;
  }
};

const NormTables& tables() {
  static const NormTables t;
  return t;
}

uint8_t ccc(uint32_t cp) {
  size_t lo = 0, hi = kCccRangeCount;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    uint64_t v = kCccRanges[mid];
    uint32_t first = uint32_t(v & 0x1FFFFF), last = uint32_t((v >> 21) & 0x1FFFFF);
    if (cp < first) {
      hi = mid;
    } else if (cp > last) {
      lo = mid + 1;
    } else {
      return uint8_t(v >> 42);
    }
  }
  return 0;
}

void decompose(uint32_t cp, const NormTables& t, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = t.decomp.find(cp);
  if (it == t.decomp.end()) {
    out.push_back(cp);
    return;
  }
  decompose(it->second.first, t, out);
  if (it->second.second != 0) decompose(it->second.second, t, out);
}

// Full canonical decomposition followed by the canonical ordering of combining marks.
std::vector<uint32_t> nfd_codepoints(std::string_view s, const NormTables& t) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(next_codepoint(s, i), t, out);
  for (size_t i = 1; i < out.size(); ++i) {  // insertion sort inside each run of non-starters
    uint8_t c = ccc(out[i]);
    if (c == 0) continue;
    for (size_t j = i; j > 0; --j) {
      uint8_t p = ccc(out[j - 1]);
      if (p == 0 || p <= c) break;
      std::swap(out[j - 1], out[j]);
    }
  }
  return out;
}

uint32_t compose_pair(uint32_t a, uint32_t b, const NormTables& t) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = t.compose.find((uint64_t(a) << 21) | b);
  return it == t.compose.end() ? 0 : it->second;
}

// Full NFD (compose=false) or NFC of a short stretch of text.
std::string normalize_span(std::string_view s, const NormTables& t, bool compose) {
  std::vector<uint32_t> cps = nfd_codepoints(s, t);
  size_t out_len = cps.size();
  if (compose) {
    out_len = 0;
    size_t starter = 0;
    bool have_starter = false;
    int last_class = -1;  // class of the last character kept after the starter; 0 = none yet
    for (size_t i = 0; i < cps.size(); ++i) {
      uint32_t cp = cps[i];
      int c = ccc(cp);
      if (have_starter && (last_class < c || last_class == 0)) {
        uint32_t comp = compose_pair(cps[starter], cp, t);
        if (comp != 0) {
          cps[starter] = comp;
          continue;
        }
      }
      if (c == 0) {
        starter = out_len;
        have_starter = true;
        last_class = 0;
      } else {
        last_class = c;
      }
      cps[out_len++] = cp;
    }
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < out_len; ++i) append_utf8(out, cps[i]);
  return out;
}

// Normalizes only the stretches that can change. A stretch starts at the last inert code point
// before a non-inert one (a base letter may compose with the marks after it) and ends before
// the next inert code point: inert ones neither decompose, reorder nor compose with what
// precedes them, so text on either side of them is independent.
std::string normalize(std::string_view s, bool compose) {
  const NormTables& t = tables();
  std::string out;
  size_t copied = 0, boundary = 0;
  for (size_t i = 0; i < s.size();) {
    size_t cp_start = i;
    if (uint8_t(s[i]) < 0x80 || t.inert[next_codepoint(s, i)]) {
      if (uint8_t(s[cp_start]) < 0x80) ++i;
      boundary = cp_start;
      continue;
    }
    size_t end = i;
    while (end < s.size()) {
      size_t k = end;
      if (uint8_t(s[k]) < 0x80 || t.inert[next_codepoint(s, k)]) break;
      end = k;
    }
    if (out.empty()) out.reserve(s.size() + 16);
    out.append(s.substr(copied, boundary - copied));
    out += normalize_span(s.substr(boundary, end - boundary), t, compose);
    copied = end;
    i = end;
  }
  if (copied == 0) return std::string(s);
  out.append(s.substr(copied));
  return out;
}

}  // namespace

std::string nfd(std::string_view s) { return normalize(s, false); }
std::string nfc(std::string_view s) { return normalize(s, true); }

const char* unicode_version() { return kUnicodeVersion; }

// ---- GPT-2 byte-level alphabet --------------------------------------------------------------

namespace {

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<uint32_t, 256> cps{};
  ByteMap() {
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cps[size_t(b)] = printable ? uint32_t(b) : 256 + n++;
      append_utf8(to_unicode[size_t(b)], cps[size_t(b)]);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return byte_map().to_unicode; }

int unicode_to_byte(uint32_t cp) {
  if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return int(cp);
  if (cp >= 256 && cp < 256 + 68) {
    const auto& cps = byte_map().cps;
    for (int b = 0; b < 256; ++b)
      if (cps[size_t(b)] == cp) return b;
  }
  return -1;
}

std::string byte_level_encode(std::string_view bytes) {
  const auto& map = byte_map().to_unicode;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += map[uint8_t(c)];
  return out;
}

}  // namespace tpro::tok
