// Parsing the pipeline stages of tokenizer.json: normalizer, pre_tokenizer, decoder and
// post_processor objects (Sequences flattened). Unsupported types fail with their name and
// the list of supported ones. Sequences may nest at most kMaxSequenceDepth deep (real files
// nest one or two): the file comes with a downloaded model and is not trusted.
#pragma once
#include <cstdint>
#include <vector>

#include "tokenizer/json_read.h"
#include "tokenizer/pipeline.h"

namespace tpro::tok {

constexpr int kMaxSequenceDepth = 64;

// `depth` is the number of Sequences around j (0 for the top-level stage).
void parse_normalizer(const Json& j, const JsonAt& at, std::vector<Normalizer>& out, int depth = 0);
void parse_pre_tokenizer(const Json& j, const JsonAt& at, std::vector<PreTokenizer>& out, int depth = 0);
void parse_decoder(const Json& j, const JsonAt& at, std::vector<Decoder>& out, int depth = 0);
// Ids the post-processor puts before and after a single sequence (TemplateProcessing "single",
// Roberta/Bert cls + sep); ByteLevel post-processing changes offsets only.
void parse_post_processor(const Json& j, const JsonAt& at, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix,
                          int depth = 0);

}  // namespace tpro::tok
