// Entry points that fill a tok::Pipeline: from tokenizer.json (+ tokenizer_config.json) and
// from a GGUF vocabulary. Both throw tpro::Error naming the source and the offending key.
#pragma once
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace tpro::tok {

void load_tokenizer_json(std::string_view tokenizer_json, std::string_view config_json, const std::string& origin,
                         Pipeline& p);
void load_vocab_data(const VocabData& vocab, Pipeline& p);

}  // namespace tpro::tok
