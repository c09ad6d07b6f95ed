// The stages of a Hugging Face tokenizer as plain data plus free functions: normalizers,
// pre-tokenizers and decoders (the model is bpe.h, added tokens added_tokens.h). Each struct
// holds one step; a JSON "Sequence" is flattened into a vector. Semantics follow
// huggingface/tokenizers (normalizers/, pre_tokenizers/, decoders/, tokenizer/pattern.rs).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace tpro::tok {

// A "pattern" in tokenizer.json: {"String": literal} or {"Regex": onig pattern}.
struct Pattern {
  std::string literal;
  std::shared_ptr<const Regex> regex;  // null for a literal

  // Appends the [start, end) match ranges in s (an empty literal matches nothing).
  void find(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
enum class PrependScheme { Always, First, Never };

struct Normalizer {
  enum class Kind { Nfc, Nfd, Prepend, Append, Replace, Strip, ByteLevel } kind = Kind::Nfc;
  Pattern pattern;                   // Replace
  std::string content;               // Prepend/Append/Replace text
  bool left = false, right = false;  // Strip
};

struct PreTokenizer {
  enum class Kind { ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit, Punctuation } kind = Kind::Split;
  Pattern pattern;                                   // Split (Whitespace uses a built-in regex)
  SplitBehavior behavior = SplitBehavior::Isolated;  // Split, Punctuation
  bool invert = false;
  bool add_prefix_space = false, use_regex = true;  // ByteLevel
  bool individual_digits = false;                   // Digits
  std::string replacement = "\xE2\x96\x81";         // Metaspace ("▁")
  PrependScheme prepend_scheme = PrependScheme::Always;
  bool split = true;
};

struct Decoder {
  enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind = Kind::Fuse;
  Pattern pattern;                           // Replace
  std::string content;                       // Replace: replacement text; Strip: the (one-character) content
  size_t start = 0, stop = 0;                // Strip
  std::string replacement = "\xE2\x96\x81";  // Metaspace
  PrependScheme prepend_scheme = PrependScheme::Always;
};

// A pre-token: text plus whether it begins at offset 0 of the original input (Metaspace
// prepend_scheme "first" prepends only there).
struct Piece {
  std::string text;
  bool at_start = false;
};

std::string normalize(const std::vector<Normalizer>& steps, std::string s);
// Runs every pre-tokenizer over the pieces in order; empty pieces are dropped.
void pre_tokenize(const std::vector<PreTokenizer>& steps, std::vector<Piece>& pieces);
// Token strings -> text. Without decoders, tokens are joined with spaces (as HF does).
std::string decode_tokens(const std::vector<Decoder>& steps, bool has_decoder, std::vector<std::string> tokens);

// The regex of the ByteLevel pre-tokenizer (GPT-2), shared compiled instance.
std::shared_ptr<const Regex> gpt2_regex();

}  // namespace tpro::tok
