// Added and special tokens, matched before the model so they are never split. Matching is
// leftmost-longest over a byte trie (HF uses Aho-Corasick with the same match kind), with the
// single_word / lstrip / rstrip rules of tokenizer/added_vocabulary.rs. Tokens with
// normalized=false match the raw text; normalized=true ones match the normalized text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tpro::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// A piece of the input: an added token (id >= 0) or text to tokenize (id -1).
struct Segment {
  size_t start, end;
  int32_t id;
};

class TokenTrie {
 public:
  // `pattern` is what is matched (the content, normalized for normalized tokens); `index`
  // refers back to the AddedToken.
  void add(std::string_view pattern, int32_t index);
  void clear();
  bool empty() const { return nodes_.size() <= 1; }
  // Longest pattern starting at s[pos]: its token index and byte length, or -1.
  int32_t longest_at(std::string_view s, size_t pos, size_t* len) const;

 private:
  struct Node {
    int32_t index = -1;
  };
  std::vector<Node> nodes_{Node{}};
  std::unordered_map<uint64_t, int32_t> edges_;  // node << 8 | byte -> child node
  bool first_byte_[256] = {};
};

class AddedVocab {
 public:
  std::vector<AddedToken> tokens;
  TokenTrie raw, normalized;

  // Splits s with one trie (raw or normalized) into segments covering s.
  void split(std::string_view s, const TokenTrie& trie, std::vector<Segment>& out) const;
};

}  // namespace tpro::tok
