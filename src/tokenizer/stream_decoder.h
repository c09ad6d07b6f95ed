// Incremental decoding for streamed generation: each pushed id returns the text it adds.
// The continuation is decoded in context (after the last prompt tokens), because a
// SentencePiece decoder drops the leading space of a sequence's first token ("a little" +
// "▁girl" would print "a littlegirl"); an incomplete UTF-8 tail is held back until complete.
// Not here: sampling or stop conditions (model/generate.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tpro {

class StreamDecoder {
 public:
  // context: the ids the continuation follows (the prompt); its last few serve as context.
  StreamDecoder(const Tokenizer& tok, const std::vector<int32_t>& context);
  // The text id adds to what was returned so far (possibly "" while a character is incomplete).
  std::string push(int32_t id);

 private:
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;  // context tail + pushed ids
  size_t printed_ = 0;        // bytes of decode(ids_) already returned (or the context's text)
  size_t n_context_ = 0;
  std::string context_text_;  // decode of the context tail alone
};

}  // namespace tpro
