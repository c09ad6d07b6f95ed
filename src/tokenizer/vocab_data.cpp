// GGUF vocabularies (tokenizer.ggml.*) -> Pipeline, rebuilt as the tokenizer.json the model was
// converted from: "gpt2" is byte-level BPE whose pre-tokenizer follows tokenizer.ggml.pre (the
// regexes are those of the original tokenizer.json files, as llama.cpp's llama-vocab.cpp lists
// them); "llama" is SentencePiece BPE with byte fallback, merging by score like llama.cpp.
// Control/unknown tokens become special added tokens, user-defined ones plain added tokens.
#include <array>
#include <cstring>

#include "core/error.h"
#include "tokenizer/loaders.h"

namespace tpro::tok {

namespace {

constexpr int32_t kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4;

const char* const kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kTekkenRegex =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt4oRegex =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// DeepSeek LLM's cased-letter class, escaped: some of its code points (U+1F7D, U+1FBE, U+1FD3,
// U+1FDB, U+2126, U+212A) are canonically equivalent to others, and editors may NFC-fold them.
const char* const kDeepseekLlmLetters =
    "\\s?["
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-"
    "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}"
    "\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"
    "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-"
    "\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"
    "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-"
    "\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-"
    "\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-"
    "\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}"
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}"
    "\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-"
    "\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-"
    "\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-"
    "\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-"
    "\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-"
    "\\x{118DF}\\x{1E900}-\\x{1E943}]+";
const char* const kDeepseekV3Regex =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// How one tokenizer.ggml.pre value pre-tokenizes: Split(Isolated) regexes then ByteLevel
// without its regex, or (gpt2_regex) ByteLevel with the GPT-2 regex after optional digit splits.
struct PreSpec {
  std::vector<const char*> names;
  std::vector<const char*> splits;
  bool gpt2_regex = false, digits = false, nfc = false, ignore_merges = false;
};

const std::vector<PreSpec>& pre_specs() {
  static const std::vector<PreSpec> specs = {
      {{"gpt2", "gpt-2", "default", "phi-2", "mpt", "olmo", "jais", "roberta-bpe"}, {}, true},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {kLlama3Regex},
       false,
       false,
       false,
       true},
      {{"dbrx", "smaug-bpe", "chatglm-bpe"}, {kLlama3Regex}},
      {{"qwen2", "deepseek-r1-qwen"}, {kQwen2Regex}, false, false, true},
      {{"smollm", "starcoder", "refact"}, {}, true, true},
      {{"tekken"}, {kTekkenRegex}},
      {{"gpt-4o", "llama4"}, {kGpt4oRegex}},
      {{"deepseek-llm"},
       {"[\\r\\n]", kDeepseekLlmLetters, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}+"}},
      {{"deepseek-coder"}, {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}},
      {{"deepseek-v3"}, {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", kDeepseekV3Regex}},
  };
  return specs;
}

Decoder decoder(Decoder::Kind kind) {
  Decoder d;
  d.kind = kind;
  return d;
}

Normalizer normalizer(Normalizer::Kind kind, std::string content = "") {
  Normalizer n;
  n.kind = kind;
  n.content = std::move(content);
  return n;
}

const PreSpec& find_pre(const std::string& pre) {
  std::string known;
  for (const PreSpec& s : pre_specs()) {
    for (const char* n : s.names) {
      if (pre == n) return s;
      known += (known.empty() ? "" : ", ") + std::string(n);
    }
  }
  fail("GGUF vocabulary: tokenizer.ggml.pre '", pre, "' is not supported (supported: ", known,
       "; hint: for other models load the original tokenizer.json instead)");
}

void setup_gpt2(const VocabData& v, Pipeline& p) {
  const PreSpec& spec = find_pre(v.pre.empty() ? "default" : v.pre);
  if (spec.nfc) p.normalizers.push_back(normalizer(Normalizer::Kind::Nfc));
  if (spec.digits) {
    PreTokenizer d;
    d.kind = PreTokenizer::Kind::Digits;
    d.individual_digits = true;
    p.pre_tokenizers.push_back(d);
  }
  for (const char* re : spec.splits) {
    PreTokenizer s;
    s.kind = PreTokenizer::Kind::Split;
    s.pattern.regex = Regex::compile(re, "GGUF vocabulary: pre-tokenizer '" + v.pre + "'");
    s.behavior = SplitBehavior::Isolated;
    p.pre_tokenizers.push_back(std::move(s));
  }
  PreTokenizer bl;
  bl.kind = PreTokenizer::Kind::ByteLevel;
  bl.use_regex = spec.gpt2_regex;
  p.pre_tokenizers.push_back(bl);
  p.model.ignore_merges = spec.ignore_merges;
  p.model.finish_vocab();
  p.model.reserve_merges(v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    size_t sp = m.find(' ');
    if (sp == std::string::npos) fail("GGUF vocabulary: tokenizer.ggml.merges[", i, "] '", m, "' has no space");
    std::string a = m.substr(0, sp), b = m.substr(sp + 1);
    auto ia = p.model.vocab.find(a), ib = p.model.vocab.find(b), im = p.model.vocab.find(a + b);
    const std::string* missing = ia == p.model.vocab.end() ? &a : ib == p.model.vocab.end() ? &b : nullptr;
    if (missing) fail("GGUF vocabulary: tokenizer.ggml.merges[", i, "] '", m, "' names unknown token '", *missing, "'");
    if (im == p.model.vocab.end())
      fail("GGUF vocabulary: tokenizer.ggml.merges[", i, "] '", m, "' produces '", a + b, "', which is not a token");
    p.model.add_merge(ia->second, ib->second, uint32_t(i), im->second);
  }
  p.decoders.push_back(decoder(Decoder::Kind::ByteLevel));
}

void setup_llama(const VocabData& v, Pipeline& p) {
  const std::string space = "\xE2\x96\x81";  // ▁
  if (v.add_space_prefix) p.normalizers.push_back(normalizer(Normalizer::Kind::Prepend, space));
  Normalizer replace_space = normalizer(Normalizer::Kind::Replace, space);
  replace_space.pattern.literal.assign(1, ' ');
  p.normalizers.push_back(replace_space);
  BpeModel& m = p.model;
  m.byte_fallback = true;
  m.fuse_unk = true;
  m.has_unk = v.unk_id >= 0;
  m.unk_id = v.unk_id;
  m.unk_token = v.unk_id >= 0 ? v.tokens[size_t(v.unk_id)] : "";
  m.finish_vocab();
  add_spm_merges(m, v.tokens, v.scores);
  Decoder replace = decoder(Decoder::Kind::Replace);
  replace.pattern.literal = space;
  replace.content.assign(1, ' ');
  p.decoders = {replace, decoder(Decoder::Kind::ByteFallback), decoder(Decoder::Kind::Fuse)};
  if (v.add_space_prefix) {
    Decoder strip = decoder(Decoder::Kind::Strip);
    strip.content = " ";
    strip.start = 1;
    p.decoders.push_back(strip);
  }
}

void check_id(int32_t id, const char* name, const VocabData& v) {
  if (id < -1 || id >= int32_t(v.tokens.size()))
    fail("GGUF vocabulary: ", name, " ", id, " is out of range (", v.tokens.size(), " tokens)");
}

}  // namespace

void load_vocab_data(const VocabData& v, Pipeline& p) {
  if (v.model != "gpt2" && v.model != "llama")
    fail("GGUF vocabulary: tokenizer.ggml.model '", v.model,
         "' is not supported (supported: gpt2 = byte-level BPE, "
         "llama = SentencePiece BPE; hint: WordPiece/Unigram models such as bert or t5 are not trainable with tpro)");
  if (v.tokens.empty()) fail("GGUF vocabulary: tokenizer.ggml.tokens is empty");
  if (!v.scores.empty() && v.scores.size() != v.tokens.size())
    fail("GGUF vocabulary: ", v.scores.size(), " scores for ", v.tokens.size(), " tokens");
  if (!v.types.empty() && v.types.size() != v.tokens.size())
    fail("GGUF vocabulary: ", v.types.size(), " token types for ", v.tokens.size(), " tokens");
  check_id(v.bos_id, "bos id", v);
  check_id(v.eos_id, "eos id", v);
  check_id(v.pad_id, "pad id", v);
  check_id(v.unk_id, "unk id", v);
  p.pieces = v.tokens;
  p.kinds.assign(v.tokens.size(), PieceKind::Normal);
  for (size_t i = 0; i < v.tokens.size(); ++i) p.model.vocab[v.tokens[i]] = int32_t(i);  // later duplicates win
  p.piece_ids = p.model.vocab;
  for (size_t i = 0; i < v.types.size(); ++i) {
    int32_t t = v.types[i];
    if ((t != kTypeControl && t != kTypeUserDefined && t != kTypeUnknown) || v.tokens[i].empty()) continue;
    AddedToken a;
    a.content = v.tokens[i];
    a.id = int32_t(i);
    a.special = t != kTypeUserDefined;
    p.added.tokens.push_back(std::move(a));
  }
  if (v.model == "gpt2") {
    setup_gpt2(v, p);
  } else {
    setup_llama(v, p);
  }
  p.has_decoder = true;
  p.finish();
  p.bos_id = v.bos_id;
  p.eos_id = v.eos_id;
  p.pad_id = v.pad_id;
  set_bos_eos(p, v.add_bos, v.add_eos);
  p.chat_template = v.chat_template;
}

}  // namespace tpro::tok
