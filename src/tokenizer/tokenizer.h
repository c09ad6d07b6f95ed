// Tokenizers that match Hugging Face `tokenizers` id for id: byte-level BPE (GPT-2, Llama 3,
// Qwen2, SmolLM) and SentencePiece-style BPE with byte fallback (Llama 2, Mistral, TinyLlama,
// Gemma), loaded from tokenizer.json (+ tokenizer_config.json) or from a GGUF vocabulary.
// Added/special tokens are matched before the model and never split. Not supported (a clear
// error names them): WordPiece/Unigram models, NFKC/Lowercase normalizers, BPE dropout.
// Encode/decode are const and thread-safe. tests/tokenizer/ checks real vocabularies against
// @lenml/tokenizers (an independent port of HF tokenizers) and documents where the two differ.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tpro {

// A vocabulary as GGUF stores it (tokenizer.ggml.*); filled by the GGUF model loader.
// "gpt2": pre names the original tokenizer.json's pre-tokenizer (gpt2/default, llama3/llama-bpe,
// qwen2, smollm/starcoder, deepseek-llm/-coder/-v3, tekken, gpt-4o, ...; others are an error).
// "llama": merges are derived from scores (higher first, ties leftmost) as llama.cpp does;
// tokens of type 2/3 become special tokens, type 4 added tokens, all matched before BPE.
struct VocabData {
  std::string model;                // "llama" (SentencePiece) or "gpt2" (byte-level BPE)
  std::string pre;                  // tokenizer.ggml.pre: "llama3", "qwen2", "smollm", "default", ...
  std::vector<std::string> tokens;  // id -> piece
  std::vector<float> scores;        // may be empty
  std::vector<int32_t> types;       // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;  // "a b"
  int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // tokenizer.ggml.add_space_prefix ("llama" only; Gemma: false)
  std::string chat_template;
};

class Tokenizer {
 public:
  // Loads <dir>/tokenizer.json and, when present, <dir>/tokenizer_config.json (add_bos/eos,
  // bos/eos/pad tokens, chat_template) and <dir>/chat_template.jinja. `path` may also name
  // a tokenizer.json file directly.
  static Tokenizer load(const std::filesystem::path& path);
  // Same from strings; config_json may be empty. `origin` names the source in error messages.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json,
                             const std::string& origin = "tokenizer.json");
  static Tokenizer from_vocab(const VocabData& vocab);

  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Encodes text; add_special adds BOS/EOS as the tokenizer's post-processor says, or as
  // tokenizer_config.json's add_bos_token/add_eos_token say when present (as transformers'
  // Llama/Gemma tokenizers do). Special tokens written in the text are always matched.
  // Invalid UTF-8 is first repaired with U+FFFD (as if decoded with errors="replace").
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Decodes ids to UTF-8 like HF tokenizers' decode (no clean_up_tokenization_spaces):
  // byte-level and byte-fallback bytes are reassembled; invalid byte-level UTF-8 becomes one
  // U+FFFD per maximal invalid subpart, an invalid byte-fallback run one U+FFFD per byte.
  // Throws tpro::Error for an id outside the vocabulary (HF would drop it silently).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t vocab_size() const;
  std::string id_to_piece(int32_t id) const;      // the raw vocabulary string
  int32_t piece_to_id(std::string_view p) const;  // -1 when absent
  bool is_special(int32_t id) const;

  int32_t bos_id() const;  // -1 when the tokenizer has none
  int32_t eos_id() const;
  int32_t pad_id() const;
  bool add_bos() const;  // whether encode(text, true) puts bos_id first
  bool add_eos() const;  // whether encode(text, true) puts eos_id last
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& chat_template() const;  // empty when the model ships none

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A minimal byte-level tokenizer (the demo command writes it next to a tiny model): a BPE model
// whose 256-entry vocabulary is one token per byte (id = byte value, no merges), ByteLevel
// pre-tokenizer and decoder, and three special tokens. Any UTF-8 text round-trips through it.
// encode(text, true) prepends <|bos|>.
inline constexpr int32_t kByteLevelBosId = 256;  // "<|bos|>"
inline constexpr int32_t kByteLevelEosId = 257;  // "<|eos|>"
inline constexpr int32_t kByteLevelPadId = 258;  // "<|pad|>"
std::string byte_level_tokenizer_json();
// The matching tokenizer_config.json: bos/eos/pad tokens, add_bos_token true, add_eos_token false.
std::string byte_level_tokenizer_config_json();

}  // namespace tpro
