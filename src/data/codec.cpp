// Text -> Block helpers: BOS/EOS without doubling, masks from character offsets. See codec.h.
#include "data/codec.h"

#include <algorithm>

#include "core/error.h"

namespace tpro {

int64_t token_boundary(const TokenCodec& codec, std::span<const int32_t> full_tokens,
                       std::string_view full_text, size_t char_offset) {
  TPRO_CHECK(char_offset <= full_text.size(), "offset ", char_offset, " past text of ", full_text.size());
  if (char_offset == 0) return 0;
  if (char_offset == full_text.size()) return int64_t(full_tokens.size());
  std::vector<int32_t> prefix = codec.encode(full_text.substr(0, char_offset));
  size_t n = std::min(prefix.size(), full_tokens.size());
  size_t i = 0;
  while (i < n && prefix[i] == full_tokens[i]) ++i;
  // The last prefix token may be the first half of a token the full text merges; either way
  // tokens from i on contain text at or after the offset.
  return int64_t(i);
}

Block finish_block(std::vector<int32_t> tokens, std::vector<uint8_t> mask, const TokenCodec& codec,
                   const SpecialTokens& sp) {
  TPRO_CHECK(tokens.size() == mask.size(), "tokens ", tokens.size(), " vs mask ", mask.size());
  Block b;
  size_t lead = 0;  // leading BOS tokens the text itself produced (e.g. a template's bos_token)
  if (codec.bos >= 0)
    while (lead < tokens.size() && tokens[lead] == codec.bos) ++lead;
  b.tokens.reserve(tokens.size() + 2);
  b.mask.reserve(tokens.size() + 2);
  if (sp.bos && codec.bos >= 0) b.tokens.push_back(codec.bos), b.mask.push_back(0);
  b.tokens.insert(b.tokens.end(), tokens.begin() + int64_t(lead), tokens.end());
  b.mask.insert(b.mask.end(), mask.begin() + int64_t(lead), mask.end());
  if (sp.eos && codec.eos >= 0 && (b.tokens.empty() || b.tokens.back() != codec.eos)) {
    uint8_t m = b.mask.empty() ? 1 : b.mask.back();
    b.tokens.push_back(codec.eos);
    b.mask.push_back(m);
  }
  if (!b.mask.empty()) b.mask[0] = 0;
  return b;
}

Block text_block(std::string_view text, std::string_view after, const TokenCodec& codec,
                 const SpecialTokens& sp) {
  std::vector<int32_t> tokens = codec.encode(text);
  std::vector<uint8_t> mask(tokens.size(), 1);
  size_t at = after.empty() ? std::string_view::npos : text.find(after);
  if (at != std::string_view::npos) {
    int64_t cut = token_boundary(codec, tokens, text, at + after.size());
    std::fill(mask.begin(), mask.begin() + cut, uint8_t(0));
  }
  return finish_block(std::move(tokens), std::move(mask), codec, sp);
}

int special_token_count(const TokenCodec& codec, const SpecialTokens& sp) {
  return (sp.bos && codec.bos >= 0 ? 1 : 0) + (sp.eos && codec.eos >= 0 ? 1 : 0);
}

}  // namespace tpro
