// tokenizer.json -> tokenizer.ggml.* for GGUF files tpro writes from Hugging Face models (see
// gguf_vocab.h). Token list, types and merges are copied; what GGUF names instead of spelling
// out (the "pre" regex set, SentencePiece's space prefix) is found the way llama.cpp's
// converter finds it, by behaviour: each candidate is built and must encode a varied test text
// exactly as the tokenizer.json does, or the export fails rather than write a vocabulary that
// tokenizes differently.
#include <cctype>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/file.h"
#include "tokenizer/gguf_vocab.h"

namespace tpro {

namespace {

using nlohmann::json;

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

// Pre-tokenizer names tpro's GGUF loader knows, most common first.
constexpr const char* kPreCandidates[] = {"default", "llama3", "qwen2", "smollm", "gpt-4o", "tekken",
                                          "deepseek-v3", "deepseek-llm", "deepseek-coder", "dbrx"};

// Digits, contractions, runs of spaces and newlines, accents (composed and not), CJK, emoji, code.
const char* const kProbeTexts[] = {
    "Hello world! It's 2024; they'll say I'm 'fine' -- OK?",
    "  leading spaces,\ttabs\t\tand\n\nnewlines \n  \n end   ",
    "Numbers 1 12 123 1234 12345 3.14159 0x1F 1,000,000",
    "na\xC3\xAFve caf\xC3\xA9 \xC3\x9Cn\xC3\xAF\xC3\xA7\xC3\xB6" "d\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC\xE3\x82\xBF\xE3\x83"
    "\xAF\xE3\x83\xBC \xEC\x95\x88\xEB\x85\x95 \xF0\x9F\x99\x82\xF0\x9F\x9A\x80",
    "for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }  // ABCdef123GHI",
    "THEY'RE WE'VE you'd SHE'LL __init__ self.x_y == None",
    "decomposed: cafe\xCC\x81 A\xCC\x8Angstro\xCC\x88m n\xCC\x83",  // differs under NFC (Qwen2)
};

struct HfVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // "a b"
  bool byte_fallback = false;
};

bool is_byte_piece(const std::string& p) {
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && std::isxdigit(uint8_t(p[3])) &&
         std::isxdigit(uint8_t(p[4]));
}

std::vector<std::string> read_merges(const json& model, const std::string& origin) {
  std::vector<std::string> out;
  if (!model.contains("merges")) return out;
  for (const json& m : model["merges"]) {
    if (m.is_string()) {
      out.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      fail(origin, ": model.merges holds ", m.dump(), " (expected \"a b\" or [\"a\", \"b\"])");
    }
  }
  return out;
}

// Tokens by id (holes become [PADi], as llama.cpp's converter names them), their GGUF types.
HfVocab read_vocab(const Tokenizer& ref, const json& j, const std::string& origin, int64_t n_vocab) {
  const json& model = j.at("model");
  HfVocab v;
  v.byte_fallback = model.value("byte_fallback", false);
  v.merges = read_merges(model, origin);
  const std::string unk = model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"] : "";
  std::vector<bool> added(size_t(ref.vocab_size()), false);
  if (j.contains("added_tokens")) {
    for (const json& a : j["added_tokens"]) {
      const int64_t id = a.value("id", int64_t(-1));
      if (id >= 0 && id < ref.vocab_size()) added[size_t(id)] = true;
    }
  }
  const size_t n = size_t(std::max<int64_t>(n_vocab, ref.vocab_size()));
  for (size_t i = 0; i < n; ++i) {
    const std::string piece = i < size_t(ref.vocab_size()) ? ref.id_to_piece(int32_t(i)) : "";
    if (piece.empty()) {
      v.tokens.push_back(cat("[PAD", i, "]"));
      v.types.push_back(kUnused);
      continue;
    }
    int32_t type = kNormal;
    if (ref.is_special(int32_t(i))) type = piece == unk ? kUnknown : kControl;
    else if (added[i]) type = kUserDefined;
    else if (v.byte_fallback && is_byte_piece(piece)) type = kByte;
    v.tokens.push_back(piece);
    v.types.push_back(type);
  }
  return v;
}

// SentencePiece-style merging takes the highest score first: a token's score is minus the rank
// of the merge that makes it; tokens no merge makes come last.
std::vector<float> scores_from_merges(const HfVocab& v) {
  std::unordered_map<std::string, size_t> id_of;
  for (size_t i = 0; i < v.tokens.size(); ++i) id_of.emplace(v.tokens[i], i);
  std::vector<float> s(v.tokens.size(), -1e9f);
  for (size_t r = 0; r < v.merges.size(); ++r) {
    const std::string& m = v.merges[r];
    const size_t sp = m.find(' ');
    auto it = id_of.find(m.substr(0, sp) + m.substr(sp + 1));
    if (it != id_of.end() && s[it->second] == -1e9f) s[it->second] = -float(r);
  }
  return s;
}

bool encodes_like(const Tokenizer& ref, const VocabData& v) {
  try {
    const Tokenizer t = Tokenizer::from_vocab(v);
    for (const char* text : kProbeTexts) {
      if (t.encode(text, false) != ref.encode(text, false)) return false;
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

VocabData base_vocab(const Tokenizer& ref, const HfVocab& hv, const json& model) {
  VocabData v;
  v.model = hv.byte_fallback ? "llama" : "gpt2";
  v.tokens = hv.tokens;
  v.types = hv.types;
  v.merges = hv.merges;
  if (hv.byte_fallback) v.scores = scores_from_merges(hv);
  v.bos_id = ref.bos_id();
  v.eos_id = ref.eos_id();
  v.pad_id = ref.pad_id();
  const std::string unk = model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"] : "";
  v.unk_id = unk.empty() ? -1 : ref.piece_to_id(unk);
  v.add_bos = ref.add_bos();
  v.add_eos = ref.add_eos();
  v.chat_template = ref.chat_template();
  return v;
}

// The candidate settings that reproduce ref, or an Error.
VocabData matching_vocab(const Tokenizer& ref, VocabData v, const std::string& origin) {
  if (v.model == "llama") {
    for (bool prefix : {true, false}) {
      v.add_space_prefix = prefix;
      if (encodes_like(ref, v)) return v;
    }
  } else {
    for (const char* pre : kPreCandidates) {
      v.pre = pre;
      if (encodes_like(ref, v)) return v;
    }
  }
  fail(origin, ": no GGUF vocabulary setting tpro knows encodes like this tokenizer.json (hint: write a Hugging ",
       "Face folder and convert it with llama.cpp's convert_hf_to_gguf.py)");
}

std::vector<GgufKV> to_metadata(const VocabData& v) {
  std::vector<GgufKV> kv = {{"tokenizer.ggml.model", v.model}};
  if (v.model == "gpt2") kv.push_back({"tokenizer.ggml.pre", v.pre});
  kv.push_back({"tokenizer.ggml.tokens", v.tokens});
  if (!v.scores.empty()) kv.push_back({"tokenizer.ggml.scores", v.scores});
  kv.push_back({"tokenizer.ggml.token_type", v.types});
  if (v.model == "gpt2") kv.push_back({"tokenizer.ggml.merges", v.merges});
  const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", v.bos_id},
                                                 {"tokenizer.ggml.eos_token_id", v.eos_id},
                                                 {"tokenizer.ggml.unknown_token_id", v.unk_id},
                                                 {"tokenizer.ggml.padding_token_id", v.pad_id}};
  for (const auto& [key, id] : ids)
    if (id >= 0) kv.push_back({key, uint32_t(id)});
  kv.push_back({"tokenizer.ggml.add_bos_token", v.add_bos});
  kv.push_back({"tokenizer.ggml.add_eos_token", v.add_eos});
  if (v.model == "llama") kv.push_back({"tokenizer.ggml.add_space_prefix", v.add_space_prefix});
  if (!v.chat_template.empty()) kv.push_back({"tokenizer.chat_template", v.chat_template});
  return kv;
}

}  // namespace

std::vector<GgufKV> gguf_vocab_from_hf(const std::filesystem::path& dir, int64_t n_vocab) {
  const Tokenizer ref = Tokenizer::load(dir);
  const fs::path path = dir / "tokenizer.json";
  const json j = json::parse(read_file(path));  // valid: Tokenizer::load parsed it
  const HfVocab hv = read_vocab(ref, j, path.string(), n_vocab);
  return to_metadata(matching_vocab(ref, base_vocab(ref, hv, j.at("model")), path.string()));
}

}  // namespace tpro
