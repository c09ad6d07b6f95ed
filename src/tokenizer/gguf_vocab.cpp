// GGUF vocabularies; see gguf_vocab.h. Defaults when a key is absent are llama.cpp's: a
// SentencePiece ("llama") vocabulary adds BOS and has <unk>=0, <s>=1, </s>=2; a byte-level
// ("gpt2") one adds nothing and has no special ids unless the file names them.
#include "tokenizer/gguf_vocab.h"

#include "core/error.h"
#include "core/log.h"

namespace tpro {

namespace {

int32_t token_id(const GgufFile& f, const char* key, int32_t fallback, size_t n_tokens) {
  if (!f.has(key)) return fallback >= 0 && size_t(fallback) < n_tokens ? fallback : -1;
  const int64_t id = f.get_int(key);
  // llama.cpp writes 0xFFFFFFFF (-1 as int32) for "no such token" (its llama2.c converter does
  // so for padding) and only warns; so do we, and the token is absent.
  if (id == int64_t(0xFFFFFFFFu) || id == -1) {
    log_warn("GGUF ", f.path().string(), ": ", key, " is ", id, " (llama.cpp's \"no token\"); treated as absent");
    return -1;
  }
  if (id < 0 || size_t(id) >= n_tokens) {
    fail("GGUF ", f.path().string(), ": ", key, " is ", id, " but the vocabulary has ", n_tokens, " tokens");
  }
  return int32_t(id);
}

}  // namespace

VocabData read_gguf_vocab(const GgufFile& f) {
  if (!f.has("tokenizer.ggml.model") || !f.has("tokenizer.ggml.tokens")) {
    fail("GGUF ", f.path().string(), ": no tokenizer.ggml.model / tokenizer.ggml.tokens (hint: this GGUF has no ",
         "embedded vocabulary; re-convert it with llama.cpp's convert_hf_to_gguf.py)");
  }
  VocabData v;
  v.model = f.get_string("tokenizer.ggml.model");
  v.pre = f.get_or<std::string>("tokenizer.ggml.pre", "");
  v.tokens = f.get_array<std::string>("tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.scores")) v.scores = f.get_array<float>("tokenizer.ggml.scores");
  if (f.has("tokenizer.ggml.token_type")) v.types = f.get_array<int32_t>("tokenizer.ggml.token_type");
  if (f.has("tokenizer.ggml.merges")) v.merges = f.get_array<std::string>("tokenizer.ggml.merges");
  const bool spm = v.model == "llama";
  const size_t n = v.tokens.size();
  v.bos_id = token_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, n);
  v.eos_id = token_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, n);
  v.unk_id = token_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n);
  v.pad_id = token_id(f, "tokenizer.ggml.padding_token_id", -1, n);
  v.add_bos = f.get_or<bool>("tokenizer.ggml.add_bos_token", spm);
  v.add_eos = f.get_or<bool>("tokenizer.ggml.add_eos_token", false);
  v.add_space_prefix = f.get_or<bool>("tokenizer.ggml.add_space_prefix", true);
  v.chat_template = f.get_or<std::string>("tokenizer.chat_template", "");
  return v;
}

Tokenizer load_gguf_tokenizer(const std::filesystem::path& path) {
  GgufFile f(path);
  try {
    return Tokenizer::from_vocab(read_gguf_vocab(f));
  } catch (const Error& e) {
    if (std::string_view(e.what()).find(path.string()) != std::string_view::npos) throw;  // already says where
    fail(path.string(), ": ", e.what());
  }
}

std::vector<GgufKV> gguf_tokenizer_metadata(const GgufFile& f) {
  std::vector<GgufKV> out;
  for (const GgufKV& kv : f.metadata())
    if (kv.key.rfind("tokenizer.", 0) == 0) out.push_back(kv);
  return out;
}

}  // namespace tpro
