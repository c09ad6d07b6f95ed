// The few tokenizer calls the data pipeline makes, as a small value type, plus the helpers
// that turn text into a Block: BOS/EOS added without ever doubling them, and loss masks whose
// boundaries come from character offsets mapped onto the canonical tokenisation of the whole
// text (never from gluing separately encoded pieces, which would change the tokens).
// Tests can build a TokenCodec without a Tokenizer (one token per byte) to hand-check blocks.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/block.h"

namespace tpro {

class Tokenizer;

struct TokenCodec {
  std::function<std::vector<int32_t>(std::string_view)> encode;  // no special tokens added
  std::function<std::string(std::span<const int32_t>)> decode;   // special tokens kept
  int32_t bos = -1;  // -1 when the tokenizer has none
  int32_t eos = -1;
};

// Wraps a tokenizer; the tokenizer must outlive the codec.
TokenCodec codec_of(const Tokenizer& tok);

// Number of leading tokens that encode(text[0, char_offset)) shares with full_tokens, i.e.
// the token index where text from char_offset onwards starts in the canonical encoding. A
// token that straddles the offset counts as after it.
int64_t token_boundary(const TokenCodec& codec, std::span<const int32_t> full_tokens,
                       std::string_view full_text, size_t char_offset);

// How BOS/EOS are applied to one row of tokens.
struct SpecialTokens {
  // true: the row starts with exactly one BOS (added unless the text produced one; a doubled
  // BOS is collapsed). false: a leading BOS the text produced is removed, as Training PRO does.
  // No effect when the codec has no BOS.
  bool bos = false;
  bool eos = false;  // append EOS unless the row already ends with it
};

// tokens/mask of the text proper (mask 1 = trained); returns the finished Block with BOS/EOS
// applied (BOS untrained; an added EOS takes the mask of the token before it) and mask[0]
// forced to 0.
Block finish_block(std::vector<int32_t> tokens, std::vector<uint8_t> mask, const TokenCodec& codec,
                   const SpecialTokens& sp);

// Encodes text and trains everything after the first occurrence of `after` (all of it when
// `after` is empty or absent), then finish_block.
Block text_block(std::string_view text, std::string_view after, const TokenCodec& codec,
                 const SpecialTokens& sp);

// Number of special tokens finish_block will add for these settings (for slicer budgets).
int special_token_count(const TokenCodec& codec, const SpecialTokens& sp);

}  // namespace tpro
