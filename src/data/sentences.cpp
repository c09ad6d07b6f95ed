// Hard-cut sections and sentence boundaries; see sentences.h.
#include "data/sentences.h"

#include <cstdint>

#include "data/text_files.h"

namespace tpro {

const std::string_view kAbbreviations[21] = {
    "Mr.",  "Mrs.", "Dr.",  "Ms.",  "St.",  "Prof.", "Jr.", "Ltd.", "Capt.", "Col.",  "Gen.",
    "Ave.", "Blvd.", "Co.", "Corp.", "Dept.", "Est.", "Gov.", "Inc.", "Ph.D.", "Univ."};

std::vector<Span> split_sections(std::string_view text, std::string_view hard_cut) {
  std::vector<Span> out;
  if (hard_cut.empty()) {
    out.push_back({0, text.size()});
    return out;
  }
  size_t start = 0;
  for (;;) {
    size_t at = text.find(hard_cut, start);
    if (at == std::string_view::npos) break;
    out.push_back({start, at});
    start = at + hard_cut.size();
  }
  out.push_back({start, text.size()});
  return out;
}

namespace {

bool ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
// A letter or digit, counting every non-ASCII byte as one (good enough for "is a word char").
bool word_char(char c) { return ascii_alnum(c) || uint8_t(c) >= 0x80; }

// Is the '.' at text[dot] part of an abbreviation or an initial, so not a sentence end?
bool dot_keeps_sentence(std::string_view text, size_t begin, size_t dot) {
  char prev = dot > begin ? text[dot - 1] : ' ';
  if (prev >= 'A' && prev <= 'Z' && (dot - 1 == begin || !word_char(text[dot - 2])))
    return true;  // single-capital initial: "J. Smith", the "S." of "U.S. "
  size_t w = dot;  // start of the word the dot ends, skipping opening quotes/brackets
  while (w > begin && !is_space(text[w - 1])) --w;
  while (w < dot && !word_char(text[w])) ++w;
  std::string_view word = text.substr(w, dot + 1 - w);
  for (std::string_view a : kAbbreviations)
    if (word == a) return true;
  return false;
}

bool ends_sentence(std::string_view text, size_t begin, size_t end, size_t i) {
  char c = text[i];
  if (c != '.' && c != '?' && c != '!') return false;
  if (i + 1 >= end || (text[i + 1] != ' ' && text[i + 1] != '\n')) return false;
  return c != '.' || !dot_keeps_sentence(text, begin, i);
}

// The code point of the 3-byte UTF-8 sequence at text[i] (every CJK mark below is one), or 0.
char32_t cp3(std::string_view text, size_t i, size_t end) {
  if (i + 3 > end || (uint8_t(text[i]) & 0xF0) != 0xE0) return 0;
  return char32_t(uint8_t(text[i]) & 0x0F) << 12 | char32_t(uint8_t(text[i + 1]) & 0x3F) << 6 |
         char32_t(uint8_t(text[i + 2]) & 0x3F);
}

// 。 ！ ？ ｡ (ideographic full stop, fullwidth ! and ?, halfwidth ideographic full stop).
bool cjk_end(char32_t c) { return c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == 0xFF61; }
// Closing quotes and brackets that stay with the sentence they close: 」』）】〕》〉”’.
bool cjk_closer(char32_t c) {
  return c == 0x300D || c == 0x300F || c == 0xFF09 || c == 0x3011 || c == 0x3015 || c == 0x300B ||
         c == 0x3009 || c == 0x201D || c == 0x2019;
}

// When text[i] starts a CJK sentence end: the offset just after it and the end marks and
// closers that follow ("？！", "。」"), else 0. CJK text has no spaces, so none is required.
size_t after_cjk_end(std::string_view text, size_t i, size_t end) {
  if (!cjk_end(cp3(text, i, end))) return 0;
  size_t j = i + 3;
  for (;;) {
    char32_t c = cp3(text, j, end);
    if (cjk_end(c) || cjk_closer(c)) j += 3;
    else if (j < end && (text[j] == '!' || text[j] == '?' || text[j] == '"' || text[j] == '\'' || text[j] == ')')) ++j;
    else return j;
  }
}

}  // namespace

std::vector<Span> split_sentences(std::string_view text, Span section) {
  std::vector<Span> out;
  size_t start = section.begin;
  while (start < section.end && is_space(text[start])) ++start;
  size_t i = start;
  while (i < section.end) {
    size_t j = ends_sentence(text, section.begin, section.end, i) ? i + 1 : after_cjk_end(text, i, section.end);
    if (j != 0) {
      while (j < section.end && is_space(text[j])) ++j;
      out.push_back({start, j});
      start = i = j;
    } else {
      ++i;
    }
  }
  if (start < section.end) out.push_back({start, section.end});
  return out;
}

}  // namespace tpro
