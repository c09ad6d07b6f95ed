// Added-token matching; see added_tokens.h. find_matches mirrors AddedVocabulary::find_matches:
// a match failing single_word is skipped (the scan goes on after it), lstrip/rstrip absorb the
// whitespace around a match into the token (never past the previous match).
#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tpro::tok {

void TokenTrie::add(std::string_view pattern, int32_t index) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char c : pattern) {
    uint64_t key = (uint64_t(node) << 8) | uint8_t(c);
    auto it = edges_.find(key);
    if (it == edges_.end()) {
      nodes_.push_back(Node{});
      it = edges_.emplace(key, int32_t(nodes_.size() - 1)).first;
    }
    node = it->second;
  }
  if (nodes_[size_t(node)].index < 0) nodes_[size_t(node)].index = index;  // first added wins
  first_byte_[uint8_t(pattern[0])] = true;
}

void TokenTrie::clear() {
  nodes_.assign(1, Node{});
  edges_.clear();
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
}

int32_t TokenTrie::longest_at(std::string_view s, size_t pos, size_t* len) const {
  if (!first_byte_[uint8_t(s[pos])]) return -1;
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < s.size(); ++i) {
    auto it = edges_.find((uint64_t(node) << 8) | uint8_t(s[i]));
    if (it == edges_.end()) break;
    node = it->second;
    if (nodes_[size_t(node)].index >= 0) {
      best = nodes_[size_t(node)].index;
      *len = i + 1 - pos;
    }
  }
  return best;
}

namespace {

// Rust regex \w on one code point, approximated with the classes that matter for tokens:
// letters, marks, decimal digits, connector punctuation and the joiners.
bool is_word_char(uint32_t cp);

uint32_t last_codepoint(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (uint8_t(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return next_codepoint(s, i);
}

bool ends_with_word(std::string_view s) { return !s.empty() && is_word_char(last_codepoint(s)); }

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  return is_word_char(next_codepoint(s, i));
}

// Start of the whitespace run that ends s.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t i = end - 1;
    while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
    size_t j = i;
    if (!is_whitespace(next_codepoint(s, j))) break;
    end = i;
  }
  return end;
}

size_t leading_space_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!is_whitespace(next_codepoint(s, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

void AddedVocab::split(std::string_view s, const TokenTrie& trie, std::vector<Segment>& out) const {
  size_t done = 0;  // end of the last emitted segment
  for (size_t pos = 0; pos < s.size() && !trie.empty();) {
    size_t len = 0;
    int32_t index = trie.longest_at(s, pos, &len);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens[size_t(index)];
    size_t start = pos, stop = pos + len;
    pos = stop;
    if (t.single_word) {
      bool left_ok = start == 0 || !ends_with_word(s.substr(0, start));
      bool right_ok = stop == s.size() || !starts_with_word(s.substr(stop));
      if (!left_ok || !right_ok) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(s.substr(0, start)), done);
    if (t.rstrip) stop += leading_space_len(s.substr(stop));
    if (done < start) out.push_back({done, start, -1});
    out.push_back({start, stop, t.id});
    done = pos = stop;
  }
  if (done < s.size()) out.push_back({done, s.size(), -1});
}

namespace {

bool is_word_char(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  static const auto re = Regex::compile("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]", "word class");
  std::string s;
  append_utf8(s, cp);
  std::vector<std::pair<size_t, size_t>> m;
  re->find_all(s, m);
  return !m.empty();
}

}  // namespace

}  // namespace tpro::tok
