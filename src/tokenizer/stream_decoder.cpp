// Incremental decoding in context; see stream_decoder.h.
#include "tokenizer/stream_decoder.h"

#include <algorithm>

namespace tpro {

namespace {
constexpr size_t kContextTokens = 4;                   // enough for a word and a partial character
const std::string kReplacement = "\xEF\xBF\xBD";       // what decode gives an incomplete UTF-8 tail
}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tok, const std::vector<int32_t>& context) : tok_(tok) {
  const size_t n = std::min(context.size(), kContextTokens);
  ids_.assign(context.end() - std::ptrdiff_t(n), context.end());
  n_context_ = n;
  context_text_ = tok_.decode(ids_, true);
  printed_ = context_text_.size();
}

std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  std::string s = tok_.decode(ids_, true);
  if (n_context_ > 0 && s.compare(0, context_text_.size(), context_text_) != 0) {
    // The context's own text does not prefix the whole (its last character was completed by
    // the new bytes): decode the continuation alone from here on.
    ids_.erase(ids_.begin(), ids_.begin() + std::ptrdiff_t(n_context_));
    n_context_ = 0;
    printed_ = 0;
    s = tok_.decode(ids_, true);
  }
  size_t keep = s.size();
  while (keep >= printed_ + 3 && s.compare(keep - 3, 3, kReplacement) == 0) keep -= 3;
  if (keep <= printed_) return "";
  std::string out = s.substr(printed_, keep - printed_);
  printed_ = keep;
  return out;
}

}  // namespace tpro
