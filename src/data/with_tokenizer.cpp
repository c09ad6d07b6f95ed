// TokenCodec over a tpro::Tokenizer (kept apart from codec.cpp so the slicer logic links and
// tests without the tokenizer's implementation).
#include "data/codec.h"
#include "tokenizer/tokenizer.h"

namespace tpro {

TokenCodec codec_of(const Tokenizer& tok) {
  TokenCodec c;
  c.encode = [&tok](std::string_view text) { return tok.encode(text, /*add_special=*/false); };
  c.decode = [&tok](std::span<const int32_t> ids) { return tok.decode(ids, /*skip_special=*/false); };
  c.bos = tok.bos_id();
  c.eos = tok.eos_id();
  return c;
}

}  // namespace tpro
