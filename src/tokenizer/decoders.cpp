// Decoders: token strings back to text, one decode_chain step at a time, as HF's decoders/ do.
// Byte-level bytes become text with from_utf8_lossy semantics (one U+FFFD per maximal invalid
// subpart); ByteFallback runs that are not valid UTF-8 give one U+FFFD per byte, like HF.
#include <algorithm>

#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace tpro::tok {

namespace {

using Tokens = std::vector<std::string>;

// A token is decoded through the byte alphabet only when every character belongs to it;
// otherwise (added tokens such as "<|im_start|>" with spaces) its UTF-8 bytes pass through.
void byte_level_bytes(const std::string& t, std::string& out) {
  size_t mark = out.size();
  for (size_t i = 0; i < t.size();) {
    int b = unicode_to_byte(next_codepoint(t, i));
    if (b < 0) {
      out.resize(mark);
      out += t;
      return;
    }
    out.push_back(char(b));
  }
}

Tokens byte_level(Tokens tokens) {
  std::string bytes;
  for (const std::string& t : tokens) byte_level_bytes(t, bytes);
  return {utf8_lossy(bytes)};
}

// "<0xAB>" -> 0xAB, or -1 (HF accepts either hex case).
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void flush_bytes(std::string& bytes, Tokens& out) {
  if (bytes.empty()) return;
  if (utf8_valid(bytes)) {
    out.push_back(bytes);
  } else {
    for (size_t i = 0; i < bytes.size(); ++i) out.push_back("\xEF\xBF\xBD");
  }
  bytes.clear();
}

Tokens byte_fallback(Tokens tokens) {
  Tokens out;
  std::string bytes;
  for (std::string& t : tokens) {
    int b = byte_token(t);
    if (b >= 0) {
      bytes.push_back(char(b));
      continue;
    }
    flush_bytes(bytes, out);
    out.push_back(std::move(t));
  }
  flush_bytes(bytes, out);
  return out;
}

Tokens strip(Tokens tokens, const Decoder& d) {
  uint32_t content = 0;
  size_t i0 = 0;
  if (!d.content.empty()) content = next_codepoint(d.content, i0);
  for (std::string& t : tokens) {
    std::vector<uint32_t> cps = to_codepoints(t);
    size_t a = 0, b = cps.size();
    while (a < std::min(d.start, cps.size()) && cps[a] == content) ++a;
    for (size_t k = 0; k < d.stop && b > a && cps[b - 1] == content; ++k) --b;
    std::string s;
    for (size_t i = a; i < b; ++i) append_utf8(s, cps[i]);
    t = std::move(s);
  }
  return tokens;
}

Tokens metaspace(Tokens tokens, const Decoder& d) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    bool drop = i == 0 && d.prepend_scheme != PrependScheme::Never;
    std::string s;
    const std::string& t = tokens[i];
    for (size_t pos = 0; pos < t.size();) {
      if (t.compare(pos, d.replacement.size(), d.replacement) == 0) {
        if (!drop) s.push_back(' ');
        pos += d.replacement.size();
      } else {
        s.push_back(t[pos++]);
      }
    }
    tokens[i] = std::move(s);
  }
  return tokens;
}

Tokens replace(Tokens tokens, const Decoder& d) {
  std::vector<std::pair<size_t, size_t>> m;
  for (std::string& t : tokens) {
    m.clear();
    d.pattern.find(t, m);
    if (m.empty()) continue;
    std::string s;
    size_t prev = 0;
    for (auto [a, b] : m) {
      s.append(t, prev, a - prev);
      s += d.content;
      prev = b;
    }
    s.append(t, prev, std::string::npos);
    t = std::move(s);
  }
  return tokens;
}

}  // namespace

std::string decode_tokens(const std::vector<Decoder>& steps, bool has_decoder, Tokens tokens) {
  std::string out;
  if (!has_decoder) {
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const Decoder& d : steps) {
    switch (d.kind) {
      case Decoder::Kind::ByteLevel:
        tokens = byte_level(std::move(tokens));
        break;
      case Decoder::Kind::ByteFallback:
        tokens = byte_fallback(std::move(tokens));
        break;
      case Decoder::Kind::Fuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens = {std::move(all)};
        break;
      }
      case Decoder::Kind::Strip:
        tokens = strip(std::move(tokens), d);
        break;
      case Decoder::Kind::Metaspace:
        tokens = metaspace(std::move(tokens), d);
        break;
      case Decoder::Kind::Replace:
        tokens = replace(std::move(tokens), d);
        break;
    }
  }
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace tpro::tok
