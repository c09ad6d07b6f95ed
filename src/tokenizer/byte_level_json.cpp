// The demo's byte-level tokenizer.json and tokenizer_config.json; see tokenizer.h. Built with
// nlohmann::json so the text is exactly what Tokenizer::from_json and HF both parse.
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tpro {

namespace {

nlohmann::ordered_json added_token(int32_t id, const char* content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

}  // namespace

std::string byte_level_tokenizer_json() {
  using Json = nlohmann::ordered_json;
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[tok::byte_to_unicode()[size_t(b)]] = b;
  Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  Json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", Json::array({added_token(kByteLevelBosId, "<|bos|>"), added_token(kByteLevelEosId, "<|eos|>"),
                                    added_token(kByteLevelPadId, "<|pad|>")})},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", Json::array({{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", Json::array({{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 1}}}},
                              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens",
         {{"<|bos|>",
           {{"id", "<|bos|>"}, {"ids", Json::array({kByteLevelBosId})}, {"tokens", Json::array({"<|bos|>"})}}}}}}},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", Json::array()}}},
  };
  return j.dump(2) + "\n";
}

std::string byte_level_tokenizer_config_json() {
  nlohmann::ordered_json c = {
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"bos_token", "<|bos|>"},
      {"eos_token", "<|eos|>"},
      {"pad_token", "<|pad|>"},
      {"model_max_length", 1 << 20},
      {"clean_up_tokenization_spaces", false},
      {"tokenizer_class", "PreTrainedTokenizerFast"},
  };
  return c.dump(2) + "\n";
}

}  // namespace tpro
