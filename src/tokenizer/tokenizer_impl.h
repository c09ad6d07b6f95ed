// The assembled tokenizer behind tpro::Tokenizer: vocabulary, added tokens, normalizers,
// pre-tokenizers, BPE model, post-processing and decoders. Both loaders (tokenizer.json and
// GGUF VocabData) fill a Pipeline and call finish(); encode/decode only read it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pipeline.h"

namespace tpro::tok {

enum class PieceKind : uint8_t { Hole = 0, Normal, Added, Special };

struct Pipeline {
  std::vector<std::string> pieces;  // id -> piece (model vocabulary and added tokens)
  std::vector<PieceKind> kinds;     // id -> kind
  VocabMap piece_ids;               // piece -> id; added tokens take precedence

  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  BpeModel model;
  AddedVocab added;
  std::vector<Decoder> decoders;
  bool has_decoder = false;

  std::vector<int32_t> prefix_ids, suffix_ids;  // added around a single sequence (BOS/EOS)
  int32_t bos_id = -1, eos_id = -1, pad_id = -1;
  std::string chat_template;

  // Sizes pieces/kinds to hold every model and added token and builds the added-token tries
  // (normalized tokens are matched in their normalized form).
  void finish();
  void encode(std::string_view text, bool add_special, std::vector<int32_t>& out) const;
  std::string decode(const int32_t* ids, size_t n, bool skip_special) const;
  int32_t size() const { return int32_t(pieces.size()); }

 private:
  void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
};

// Post-processing from explicit flags: [bos] + ids + [eos] (what tokenizer_config.json's
// add_bos_token / add_eos_token and GGUF's add_bos/add_eos ask for).
void set_bos_eos(Pipeline& p, bool add_bos, bool add_eos);

}  // namespace tpro::tok
