// The tokenizer embedded in a GGUF model: its tokenizer.ggml.* metadata read into VocabData
// (Tokenizer::from_vocab builds the encoder), and the same keys for GGUF files tpro writes,
// copied from a GGUF or converted from a tokenizer.json (gguf_vocab_export.cpp). Key names and
// defaults follow llama.cpp (gguf-py constants.py, llama-vocab.cpp); reading validates types
// and id ranges and names the file and key in its errors.
#pragma once
#include <filesystem>
#include <vector>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace tpro {

// Reads tokenizer.ggml.* (and tokenizer.chat_template). Throws when tokenizer.ggml.model or
// tokenizer.ggml.tokens is missing ("(hint: this GGUF has no embedded vocabulary)").
VocabData read_gguf_vocab(const GgufFile& f);
// The Tokenizer of a GGUF model file.
Tokenizer load_gguf_tokenizer(const std::filesystem::path& path);

// Every tokenizer.* metadata entry of f, in file order (to copy a vocabulary verbatim).
std::vector<GgufKV> gguf_tokenizer_metadata(const GgufFile& f);

// The tokenizer.ggml.* entries of a Hugging Face folder's BPE tokenizer (tokenizer.json +
// tokenizer_config.json), padded with [PADi] tokens to n_vocab (the model's embedding rows).
// The GGUF pre-tokenizer name (byte-level BPE) or space-prefix flag (SentencePiece BPE) is
// chosen by encoding probe texts; throws when no setting reproduces the tokenizer.
std::vector<GgufKV> gguf_vocab_from_hf(const std::filesystem::path& dir, int64_t n_vocab);

}  // namespace tpro
