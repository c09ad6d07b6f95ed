// Tokenizer behavior on small hand-made tokenizer.json files (the BPE cases of HF's
// models/bpe tests), tokenizer_config.json handling, the byte-level demo tokenizer, invalid
// UTF-8 input and concurrent encodes.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/test_util.h"
#include "core/error.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace tpro::test {
namespace {

using nlohmann::json;

// A tokenizer.json with a BPE model over `vocab` (ids in order) and `merges`.
json bpe_json(const std::vector<std::string>& vocab, const std::vector<std::string>& merges, json model_extra = {}) {
  json v = json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
  json model = {{"type", "BPE"}, {"vocab", v}, {"merges", merges}};
  for (auto& [k, val] : model_extra.items()) model[k] = val;
  return {{"model", model}, {"added_tokens", json::array()}};
}

Tokenizer from(const json& j, const json& config = nullptr) {
  return Tokenizer::from_json(j.dump(), config.is_null() ? "" : config.dump());
}

TEST(Bpe, MergesByRankLikeHfUnrelatedExample) {
  json j =
      bpe_json({"u", "n", "r", "e", "l", "a", "t", "d", "re", "at", "ed", "un", "ated", "rel", "related", "unrelated"},
               {"r e", "a t", "e d", "u n", "at ed", "re l", "rel ated", "un related"});
  EXPECT_EQ(from(j).encode("unrelated"), (std::vector<int32_t>{15}));
  EXPECT_EQ(from(j).encode("unrelate"), (std::vector<int32_t>{11, 13, 9, 3}));  // un rel at e
}

TEST(Bpe, MergesAcceptBothSerializations) {
  json a = bpe_json({"a", "b", "ab"}, {"a b"});
  json b = a;
  b["model"]["merges"] = json::array({json::array({"a", "b"})});
  EXPECT_EQ(from(a).encode("abab"), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(from(b).encode("abab"), (std::vector<int32_t>{2, 2}));
}

TEST(Bpe, UnknownCharactersFuseOnlyWhenAsked) {
  json j = bpe_json({"<unk>", "a", "b"}, {}, {{"unk_token", "<unk>"}});
  EXPECT_EQ(from(j).encode("accb"), (std::vector<int32_t>{1, 0, 0, 2}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(from(j).encode("accb"), (std::vector<int32_t>{1, 0, 2}));
  json no_unk = bpe_json({"a", "b"}, {});  // HF drops what it cannot represent
  EXPECT_EQ(from(no_unk).encode("acb"), (std::vector<int32_t>{0, 1}));
}

TEST(Bpe, ByteFallbackBeforeUnk) {
  std::vector<std::string> vocab{"<unk>", "a"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab.push_back(name);
  }
  json j = bpe_json(vocab, {}, {{"unk_token", "<unk>"}, {"byte_fallback", true}});
  // "é" = C3 A9 -> <0xC3> <0xA9>.
  EXPECT_EQ(from(j).encode("aé"), (std::vector<int32_t>{1, 2 + 0xC3, 2 + 0xA9}));
  EXPECT_EQ(from(j).decode(std::vector<int32_t>{1, 2 + 0xC3, 2 + 0xA9}),
            "a <0xC3> <0xA9>");  // no decoder: joined by spaces
}

TEST(Bpe, ContinuingSubwordPrefixAndIgnoreMerges) {
  json j = bpe_json({"a", "##b", "##c", "ab", "abc"}, {"a ##b", "ab ##c"},
                    {{"continuing_subword_prefix", "##"}, {"unk_token", "[UNK]"}});
  EXPECT_EQ(from(j).encode("ab"), (std::vector<int32_t>{3}));
  EXPECT_EQ(from(j).encode("abc"), (std::vector<int32_t>{4}));
  json k = bpe_json({"a", "b", "c", "ab", "bc", "abc"}, {"b c", "a bc"});
  EXPECT_EQ(from(k).encode("abc"), (std::vector<int32_t>{5}));
  k["model"]["merges"] = json::array({"a b"});  // "abc" is unreachable by merges...
  EXPECT_EQ(from(k).encode("abc"), (std::vector<int32_t>{3, 2}));
  k["model"]["ignore_merges"] = true;  // ...but ignore_merges takes whole words from the vocab
  EXPECT_EQ(from(k).encode("abc"), (std::vector<int32_t>{5}));
}

TEST(AddedTokensInText, NormalizedOnesMatchTheNormalizedText) {
  // Under NFC, a normalized added token written decomposed matches both spellings of the
  // word; a non-normalized one only matches its exact bytes in the raw text.
  json j = bpe_json({"c", "a", "f", "e", "\u00e9", "\u0301", "n", "i", "\u00ef", "\u0308", "v"}, {});
  j["normalizer"] = {{"type", "NFC"}};
  j["added_tokens"] = {{{"id", 11}, {"content", "cafe\u0301"}, {"normalized", true}},
                       {{"id", 12}, {"content", "nai\u0308ve"}, {"normalized", false}}};
  Tokenizer t = from(j);
  EXPECT_EQ(t.encode("caf\u00e9"), (std::vector<int32_t>{11}));
  EXPECT_EQ(t.encode("cafe\u0301"), (std::vector<int32_t>{11}));
  EXPECT_EQ(t.encode("nai\u0308ve"), (std::vector<int32_t>{12}));
  EXPECT_EQ(t.encode("na\u00efve"), (std::vector<int32_t>{6, 1, 8, 10, 3}));
}

TEST(Bpe, LongWordsAreOnlyCutWhereNoTokenSpansTheCut) {
  // One 900-byte word. "x▁" is a token, so no cut may fall between x and ▁: merging x+▁ first
  // (rank 0) must win over ▁+a everywhere, as in an uncut BPE.
  std::string unit = "x\u2581a", text;
  for (int i = 0; i < 180; ++i) text += unit;
  json j = bpe_json({"x", "\u2581", "a", "x\u2581", "\u2581a"}, {"x \u2581", "\u2581 a"});
  std::vector<int32_t> want;
  for (int i = 0; i < 180; ++i) want.insert(want.end(), {3, 2});
  EXPECT_EQ(from(j).encode(text), want);
  // Without the "x▁" token the word is cut before each ▁ and every part merges ▁+a.
  json k = bpe_json({"x", "\u2581", "a", "\u2581a"}, {"\u2581 a"});
  want.clear();
  for (int i = 0; i < 180; ++i) want.insert(want.end(), {0, 3});
  EXPECT_EQ(from(k).encode(text), want);
}

TEST(Config, FlagsOverrideThePostProcessorAndNameTokens) {
  json j = bpe_json({"<s>", "</s>", "<pad>", "a"}, {});
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}}}}};
  Tokenizer plain = from(j);
  EXPECT_EQ(plain.encode("a"), (std::vector<int32_t>{0, 3}));
  EXPECT_EQ(plain.encode("a", false), (std::vector<int32_t>{3}));
  EXPECT_EQ(plain.bos_id(), 0);
  EXPECT_TRUE(plain.add_bos());
  EXPECT_FALSE(plain.add_eos());

  json config = {{"bos_token", "<s>"},    {"eos_token", {{"content", "</s>"}}},
                 {"pad_token", "<pad>"},  {"add_bos_token", false},
                 {"add_eos_token", true}, {"chat_template", "{{ bos_token }}"}};
  Tokenizer t = from(j, config);
  EXPECT_EQ(t.encode("a"), (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.pad_id(), 2);
  EXPECT_EQ(t.eos_token(), "</s>");
  EXPECT_FALSE(t.add_bos());
  EXPECT_TRUE(t.add_eos());
  EXPECT_EQ(t.chat_template(), "{{ bos_token }}");

  config["chat_template"] =
      json::array({{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}});
  EXPECT_EQ(from(j, config).chat_template(), "D");
}

TEST(Config, TokensDeclaredOnlyInTheConfigBecomeAddedTokens) {
  // "</s>" is an ordinary vocabulary entry that the merges cannot build; naming it as
  // eos_token makes transformers (and tpro) match it whole and treat it as special.
  json j = bpe_json({"<", "/", "s", ">", "</", "</s", "</s>", "a"}, {"< /", "</ s"});
  EXPECT_FALSE(from(j).is_special(6));
  EXPECT_EQ(from(j).encode("a</s>"), (std::vector<int32_t>{7, 5, 3}));
  Tokenizer t = from(j, {{"eos_token", "</s>"}});
  EXPECT_TRUE(t.is_special(6));
  EXPECT_EQ(t.encode("a</s>"), (std::vector<int32_t>{7, 6}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{7, 6}, true), "a");
  // added_tokens_decoder entries missing from tokenizer.json are added at the ids they state.
  json config = {{"added_tokens_decoder", {{"8", {{"content", "<|x|>"}, {"special", true}}}}}};
  Tokenizer x = from(j, config);
  EXPECT_EQ(x.vocab_size(), 9);
  EXPECT_EQ(x.encode("a<|x|>a"), (std::vector<int32_t>{7, 8, 7}));
  config["added_tokens_decoder"] = {{"9", {{"content", "<|x|>"}, {"special", true}}}};
  EXPECT_ERROR_HAS(from(j, config),
                   "tokenizer_config.json: added_tokens_decoder.9.id: added token '<|x|>' has id 9, out of range");
}

TEST(Config, LoadReadsTheFolderAndChatTemplateJinja) {
  fs::path dir = fs::temp_directory_path() / "tpro_tokenizer_load_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_file_atomic(dir / "tokenizer.json", byte_level_tokenizer_json());
  write_file_atomic(dir / "tokenizer_config.json", byte_level_tokenizer_config_json());
  EXPECT_EQ(Tokenizer::load(dir).chat_template(), "");
  write_file_atomic(dir / "chat_template.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}");
  EXPECT_EQ(Tokenizer::load(dir).chat_template(), "{% for m in messages %}{{ m.content }}{% endfor %}");
  EXPECT_EQ(Tokenizer::load(dir / "tokenizer.json").vocab_size(), 259);
  fs::remove_all(dir);
}

TEST(ByteLevelTokenizer, OneTokenPerByteAndSpecialTokens) {
  Tokenizer t = Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json());
  EXPECT_EQ(t.vocab_size(), 259);
  EXPECT_EQ(t.bos_id(), kByteLevelBosId);
  EXPECT_EQ(t.eos_id(), kByteLevelEosId);
  EXPECT_EQ(t.pad_id(), kByteLevelPadId);
  EXPECT_EQ(t.bos_token(), "<|bos|>");
  EXPECT_TRUE(t.add_bos());
  EXPECT_FALSE(t.add_eos());
  EXPECT_EQ(t.encode("A é"), (std::vector<int32_t>{256, 'A', ' ', 0xC3, 0xA9}));
  EXPECT_EQ(t.encode("x<|eos|>", false), (std::vector<int32_t>{'x', kByteLevelEosId}));
  EXPECT_EQ(t.decode(t.encode("hi<|eos|>")), "<|bos|>hi<|eos|>");
  EXPECT_EQ(t.decode(t.encode("hi<|eos|>"), true), "hi");
  EXPECT_TRUE(t.is_special(kByteLevelPadId));
  EXPECT_FALSE(t.is_special('a'));
}

TEST(ByteLevelTokenizer, RoundTripsEveryByteOfRandomUtf8) {
  Tokenizer t = Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json());
  std::mt19937 rng(7);
  std::string all;
  for (uint32_t cp = 0; cp < 0x800; ++cp) tok::append_utf8(all, cp);  // every 1- and 2-byte form
  for (int k = 0; k < 2000; ++k) {
    uint32_t cp = rng() % 0x110000;
    if (cp >= 0xD800 && cp < 0xE000) continue;
    tok::append_utf8(all, cp);
  }
  std::vector<int32_t> ids = t.encode(all, false);
  ASSERT_EQ(ids.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(ids[i], int32_t(uint8_t(all[i]))) << i;
  EXPECT_EQ(t.decode(ids), all);
}

TEST(Encode, InvalidUtf8IsRepairedLikeDecodingWithReplace) {
  Tokenizer t = Tokenizer::from_json(byte_level_tokenizer_json(), "");
  EXPECT_EQ(t.encode("a\xFF"
                     "b",
                     false),
            t.encode("a\xEF\xBF\xBD"
                     "b",
                     false));
  EXPECT_EQ(t.encode("\xE6\x97", false), (std::vector<int32_t>{0xEF, 0xBF, 0xBD}));
}

TEST(Encode, ConcurrentEncodesAgreeWithSerial) {
  if (!require_node_modules()) return;
  Tokenizer t = Tokenizer::load(lenml_model_dir("gpt2"));
  auto texts = nlohmann::json::parse(read_file(corpus_path()))["texts"].get<std::vector<std::string>>();
  std::vector<std::vector<int32_t>> serial;
  for (const auto& s : texts) serial.push_back(t.encode(s));
  Tokenizer fresh = Tokenizer::load(lenml_model_dir("gpt2"));  // cold cache, filled concurrently
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          bad[size_t(w)] +=
              fresh.encode(texts[(i + size_t(w) * 7) % texts.size()]) != serial[(i + size_t(w) * 7) % texts.size()];
    });
  for (auto& th : threads) th.join();
  for (int w = 0; w < 4; ++w) EXPECT_EQ(bad[size_t(w)], 0) << "thread " << w;
}

TEST(Decode, PieceLookupsAndRangeChecks) {
  Tokenizer t = Tokenizer::from_json(byte_level_tokenizer_json(), "");
  EXPECT_EQ(t.piece_to_id("Ġ"), ' ');
  EXPECT_EQ(t.piece_to_id("<|pad|>"), kByteLevelPadId);
  EXPECT_EQ(t.piece_to_id("nope"), -1);
  EXPECT_EQ(t.id_to_piece('A'), "A");
  EXPECT_EQ(t.decode(std::vector<int32_t>{}), "");
}

}  // namespace
}  // namespace tpro::test

namespace tpro::test {
namespace {

// A byte-level GGUF vocabulary whose only merges build "1234", so the ids show how a
// pre-tokenizer cut the digits.
VocabData digit_vocab(const std::string& pre) {
  VocabData v;
  v.model = "gpt2";
  v.pre = pre;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(tok::byte_to_unicode()[size_t(b)]);
  v.tokens.insert(v.tokens.end(), {"12", "123", "1234"});
  v.merges = {"1 2", "12 3", "123 4"};
  return v;
}

TEST(GgufPre, EveryNamedPreTokenizerLoadsAndRoundTrips) {
  const std::string text = "Hello wörld, it's 2024!\n\t日本語 <b>x</b>  ";
  for (const char* pre :
       {"gpt2",           "gpt-2",      "default",  "phi-2",     "mpt",         "olmo",      "jais",
        "roberta-bpe",    "llama3",     "llama-v3", "llama-bpe", "falcon3",     "falcon-h1", "pixtral",
        "midm-2.0",       "lfm2",       "dbrx",     "smaug-bpe", "chatglm-bpe", "qwen2",     "deepseek-r1-qwen",
        "smollm",         "starcoder",  "refact",   "tekken",    "gpt-4o",      "llama4",    "deepseek-llm",
        "deepseek-coder", "deepseek-v3"}) {
    Tokenizer t = Tokenizer::from_vocab(digit_vocab(pre));
    EXPECT_EQ(t.decode(t.encode(text)), text) << pre;
  }
}

TEST(GgufPre, DigitGroupingFollowsTheNamedRegex) {
  auto ids = [](const char* pre) { return Tokenizer::from_vocab(digit_vocab(pre)).encode("1234", false); };
  const int32_t one = '1', four = '4', t123 = 257, t1234 = 258;
  EXPECT_EQ(ids("gpt2"), (std::vector<int32_t>{t1234}));         // \p{N}+
  EXPECT_EQ(ids("llama3"), (std::vector<int32_t>{t123, four}));  // \p{N}{1,3}
  EXPECT_EQ(ids("deepseek-v3"), (std::vector<int32_t>{t123, four}));
  EXPECT_EQ(ids("qwen2"), (std::vector<int32_t>{one, '2', '3', four}));   // \p{N}
  EXPECT_EQ(ids("smollm"), (std::vector<int32_t>{one, '2', '3', four}));  // Digits(individual)
}

}  // namespace
}  // namespace tpro::test
