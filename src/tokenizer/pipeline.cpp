// Normalizers and pre-tokenizers (decoders are in decoders.cpp); see pipeline.h. Splits follow
// NormalizedString::split: matches cover the string, the behavior decides where delimiters go,
// and empty pieces vanish.
#include "tokenizer/pipeline.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace tpro::tok {

namespace {

using Ranges = std::vector<std::pair<size_t, size_t>>;

struct Span {
  size_t start, end;
  bool is_match;
};

// Turns match ranges into spans covering [0, n): gaps are non-matches.
std::vector<Span> cover(const Ranges& matches, size_t n) {
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (auto [s, e] : matches) {
    if (prev != s) spans.push_back({prev, s, false});
    spans.push_back({s, e, true});
    prev = e;
  }
  if (prev != n || spans.empty()) spans.push_back({prev, n, false});
  return spans;
}

// Applies a split behavior to covering spans; returns the kept [start, end) ranges.
Ranges apply_behavior(const std::vector<Span>& spans, SplitBehavior b) {
  Ranges out;
  bool prev_match = false;
  switch (b) {
    case SplitBehavior::Isolated:
      for (const Span& s : spans) out.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::Removed:
      for (const Span& s : spans)
        if (!s.is_match) out.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::Contiguous:
      for (const Span& s : spans) {
        if (s.is_match == prev_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.start, s.end);
        }
        prev_match = s.is_match;
      }
      break;
    case SplitBehavior::MergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !prev_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.start, s.end);
        }
        prev_match = s.is_match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (size_t i = spans.size(); i-- > 0;) {
        const Span& s = spans[i];
        if (s.is_match && !prev_match && !out.empty()) {
          out.back().first = s.start;
        } else {
          out.emplace_back(s.start, s.end);
        }
        prev_match = s.is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

void split_piece(const Piece& p, const Ranges& matches, bool invert, SplitBehavior b, std::vector<Piece>& out) {
  std::vector<Span> spans = cover(matches, p.text.size());
  if (invert)
    for (Span& s : spans) s.is_match = !s.is_match;
  for (auto [s, e] : apply_behavior(spans, b))
    if (e > s) out.push_back({p.text.substr(s, e - s), p.at_start && s == 0});
}

// Ranges of single characters satisfying pred, as HF's char-predicate patterns produce.
template <typename Pred>
Ranges char_matches(std::string_view s, Pred pred) {
  Ranges r;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    uint32_t cp = next_codepoint(s, i);
    if (pred(cp)) r.emplace_back(start, i);
  }
  return r;
}

// Unicode general category N (Rust char::is_numeric), via PCRE2's tables.
const Regex& numeric_regex() {
  static const auto re = Regex::compile("\\p{N}", "Digits pre-tokenizer");
  return *re;
}

// Unicode punctuation (P*) or ASCII punctuation, which includes symbols such as $+<=>^`|~.
const Regex& punctuation_regex() {
  static const auto re = Regex::compile("[\\p{P}!-/:-@\\[-`{-~]", "Punctuation pre-tokenizer");
  return *re;
}

// HF's Whitespace regex \w+|[^\w\s]+ with Rust's \w (Alphabetic, marks, decimal digits,
// connector punctuation, joiners), which is wider than PCRE2's.
std::shared_ptr<const Regex> whitespace_regex() {
  static const std::string word = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}";
  static const auto re = Regex::compile("[" + word + "]+|[^" + word + "\\s]+", "Whitespace pre-tokenizer");
  return re;
}

std::string replace_all(std::string_view s, const Pattern& p, std::string_view content) {
  Ranges m;
  p.find(s, m);
  if (m.empty()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t prev = 0;
  for (auto [a, b] : m) {
    out.append(s.substr(prev, a - prev));
    out.append(content);
    prev = b;
  }
  out.append(s.substr(prev));
  return out;
}

std::string strip(std::string_view s, bool left, bool right) {
  std::vector<uint32_t> cps = to_codepoints(s);
  size_t a = 0, b = cps.size();
  if (left)
    while (a < b && is_whitespace(cps[a])) ++a;
  if (right)
    while (b > a && is_whitespace(cps[b - 1])) --b;
  std::string out;
  for (size_t i = a; i < b; ++i) append_utf8(out, cps[i]);
  return out;
}

void pre_tokenize_step(const PreTokenizer& t, const Piece& p, std::vector<Piece>& out) {
  Ranges m;
  switch (t.kind) {
    case PreTokenizer::Kind::Split:
      t.pattern.find(p.text, m);
      split_piece(p, m, t.invert, t.behavior, out);
      return;
    case PreTokenizer::Kind::Digits:
      numeric_regex().find_all(p.text, m);
      split_piece(p, m, false, t.individual_digits ? SplitBehavior::Isolated : SplitBehavior::Contiguous, out);
      return;
    case PreTokenizer::Kind::Punctuation:
      punctuation_regex().find_all(p.text, m);
      split_piece(p, m, false, t.behavior, out);
      return;
    case PreTokenizer::Kind::WhitespaceSplit:
      split_piece(p, char_matches(p.text, is_whitespace), false, SplitBehavior::Removed, out);
      return;
    case PreTokenizer::Kind::Whitespace:
      whitespace_regex()->find_all(p.text, m);
      split_piece(p, m, true, SplitBehavior::Removed, out);
      return;
    case PreTokenizer::Kind::Metaspace: {
      Piece q{replace_all(p.text, Pattern{" ", nullptr}, t.replacement), p.at_start};
      bool starts = q.text.compare(0, t.replacement.size(), t.replacement) == 0;
      bool prepend =
          t.prepend_scheme == PrependScheme::Always || (t.prepend_scheme == PrependScheme::First && p.at_start);
      if (prepend && !starts) q.text.insert(0, t.replacement);
      if (!t.split) {
        if (!q.text.empty()) out.push_back(std::move(q));
        return;
      }
      Pattern{t.replacement, nullptr}.find(q.text, m);
      split_piece(q, m, false, SplitBehavior::MergedWithNext, out);
      return;
    }
    case PreTokenizer::Kind::ByteLevel: {
      Piece q = p;
      if (t.add_prefix_space && !q.text.empty() && q.text[0] != ' ') q.text = " " + q.text;
      std::vector<Piece> parts;
      if (t.use_regex) {
        gpt2_regex()->find_all(q.text, m);
        split_piece(q, m, false, SplitBehavior::Isolated, parts);
      } else if (!q.text.empty()) {
        parts.push_back(std::move(q));
      }
      for (Piece& part : parts) out.push_back({byte_level_encode(part.text), part.at_start});
      return;
    }
  }
}

}  // namespace

void Pattern::find(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
  if (regex) {
    regex->find_all(s, out);
    return;
  }
  if (literal.empty()) return;
  for (size_t pos = s.find(literal); pos != std::string_view::npos; pos = s.find(literal, pos + literal.size()))
    out.emplace_back(pos, pos + literal.size());
}

std::shared_ptr<const Regex> gpt2_regex() {
  static const auto re = Regex::compile(
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", "ByteLevel pre-tokenizer");
  return re;
}

std::string normalize(const std::vector<Normalizer>& steps, std::string s) {
  for (const Normalizer& n : steps) {
    switch (n.kind) {
      case Normalizer::Kind::Nfc:
        s = nfc(s);
        break;
      case Normalizer::Kind::Nfd:
        s = nfd(s);
        break;
      case Normalizer::Kind::Prepend:
        if (!s.empty()) s.insert(0, n.content);
        break;
      case Normalizer::Kind::Append:
        if (!s.empty()) s.append(n.content);
        break;
      case Normalizer::Kind::Replace:
        s = replace_all(s, n.pattern, n.content);
        break;
      case Normalizer::Kind::Strip:
        s = strip(s, n.left, n.right);
        break;
      case Normalizer::Kind::ByteLevel:
        s = byte_level_encode(s);
        break;
    }
  }
  return s;
}

void pre_tokenize(const std::vector<PreTokenizer>& steps, std::vector<Piece>& pieces) {
  std::vector<Piece> next;
  for (const PreTokenizer& t : steps) {
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const Piece& p : pieces) pre_tokenize_step(t, p, next);
    pieces.swap(next);
  }
  std::erase_if(pieces, [](const Piece& p) { return p.text.empty(); });
}

}  // namespace tpro::tok
