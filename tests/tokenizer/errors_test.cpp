// Bad tokenizer files and vocabularies: each case asserts the specific message (file, JSON
// path, expected vs got, hint) so a user can fix the input without reading tpro's source.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/error.h"
#include "tokenizer_test_util.h"

namespace tpro::test {
namespace {

using nlohmann::json;

json small() {
  return {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}},
          {"added_tokens", json::array()}};
}

void load(const json& j, const std::string& config = "") { Tokenizer::from_json(j.dump(), config, "m/tokenizer.json"); }
std::string load_error(const json& j, const std::string& config = "") { return error_of([&] { load(j, config); }); }

using ::testing::HasSubstr;

TEST(TokenizerErrors, MissingFilesNameThePath) {
  EXPECT_ERROR_HAS(Tokenizer::load("/nonexistent/model"), "cannot load tokenizer: /nonexistent/model does not exist");
  fs::path dir = fs::temp_directory_path() / "tpro_tokenizer_empty_dir";
  fs::create_directories(dir);
  EXPECT_ERROR_HAS(Tokenizer::load(dir), "no tokenizer.json in " + dir.string() + " (hint:");
  fs::remove_all(dir);
}

TEST(TokenizerErrors, InvalidJsonGivesLineAndColumn) {
  std::string text = "{\n  \"model\": {\n    \"vocab\": {\"a\": 0,}\n  }\n}";
  std::string msg = error_of([&] { Tokenizer::from_json(text, "", "m/tokenizer.json"); });
  EXPECT_THAT(msg, HasSubstr("m/tokenizer.json: invalid JSON at line 3, column 22"));
  std::string cfg = load_error(small(), "{\"bos_token\": ");
  EXPECT_THAT(cfg, HasSubstr("m/tokenizer_config.json: invalid JSON at line 1"));
}

TEST(TokenizerErrors, UnsupportedModelTypesAreNamedWithAHint) {
  json j = small();
  j["model"]["type"] = "WordPiece";
  EXPECT_ERROR_HAS(load(j), "m/tokenizer.json: model.type: model type 'WordPiece' is not supported");
  EXPECT_ERROR_HAS(load(j), "hint: WordPiece belongs to BERT-style encoders");
  j["model"]["type"] = "Unigram";
  EXPECT_ERROR_HAS(load(j), "model type 'Unigram' is not supported");
  EXPECT_ERROR_HAS(load(j), "hint: Unigram is SentencePiece's unigram model");
  j = {{"model", {{"vocab", json::array({json::array({"a", -1.5})})}}}};
  EXPECT_ERROR_HAS(load(j), "model.type: is missing and there are no merges, so this is not a BPE model");
  j = small();
  j["model"]["dropout"] = 0.1;
  EXPECT_ERROR_HAS(load(j), "model.dropout: BPE dropout 0.1 is not supported");
}

TEST(TokenizerErrors, VocabularyAndMerges) {
  json j = small();
  j["model"].erase("vocab");
  EXPECT_ERROR_HAS(load(j), "m/tokenizer.json: model.vocab: is missing");
  j = small();
  j["model"]["vocab"]["c"] = 1;
  EXPECT_ERROR_HAS(load(j), "model.vocab: tokens 'b' and 'c' share id 1");
  j = small();
  j["model"]["vocab"]["c"] = 7;
  EXPECT_ERROR_HAS(load(j), "model.vocab.c: id 7 is out of range: the vocabulary has 4 entries");
  j = small();
  j["model"]["merges"] = {"a b", "a z"};
  EXPECT_ERROR_HAS(load(j), "model.merges[1]: merge 'a z' names unknown token 'z'");
  j["model"]["merges"] = {"b a"};
  EXPECT_ERROR_HAS(load(j), "model.merges[0]: merge 'b a' produces 'ba', which is not in the vocabulary");
  j["model"]["merges"] = {"ab"};
  EXPECT_ERROR_HAS(load(j), "model.merges[0]: expected \"left right\", got \"ab\" (no space)");
  j["model"]["merges"] = json::array({json::array({"a", "b", "c"})});
  EXPECT_ERROR_HAS(load(j), "model.merges[0]: expected [left, right], got an array of 3");
  j["model"]["vocab"]["a"] = "zero";
  EXPECT_ERROR_HAS(load(j), "model.vocab.a: expected an integer, got string");
  j = small();
  j["model"]["vocab"]["b"] = {{"id", 1}};
  EXPECT_ERROR_HAS(load(j), "model.vocab.b: unexpected object");
  j = small();
  j["model"]["vocab"] = json::array({json::array({"a", 0.0})});
  EXPECT_ERROR_HAS(load(j), "model.vocab: expected an object, got array");
  j = small();
  j["model"]["merges"] = {"a b", 7};
  EXPECT_ERROR_HAS(load(j), "model.merges[1]: expected a merge string or [left, right], got number");
  j["model"]["merges"] = json::object();
  EXPECT_ERROR_HAS(load(j), "model.merges: expected an array, got object");
}

TEST(TokenizerErrors, AddedTokenIds) {
  json j = small();
  j["added_tokens"] = {{{"id", 5}, {"content", "<s>"}, {"special", true}}};
  EXPECT_ERROR_HAS(load(j),
                   "added_tokens[0].id: added token '<s>' has id 5, out of range: the 3-token vocabulary "
                   "and the added tokens before it put it at id 3");
  j["added_tokens"] = {{{"id", 1}, {"content", "<s>"}, {"special", true}}};
  EXPECT_ERROR_HAS(load(j), "added token '<s>' has id 1, out of range");
  j["added_tokens"] = {{{"id", 0}, {"content", "ab"}}};
  EXPECT_ERROR_HAS(load(j), "added_tokens[0].id: added token 'ab' has id 0, but the vocabulary gives it id 2");
  j["added_tokens"] = {{{"id", 3}, {"content", ""}}};
  EXPECT_ERROR_HAS(load(j), "added_tokens[0].content: an added token cannot be empty");
  j["added_tokens"] = {{{"id", 3}, {"content", "<s>"}, {"special", "yes"}}};
  EXPECT_ERROR_HAS(load(j), "added_tokens[0].special: expected true or false, got string");
}

TEST(TokenizerErrors, UnsupportedStagesListWhatIsSupported) {
  json j = small();
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_ERROR_HAS(load(j), "normalizer.type: normalizer 'Lowercase' is not supported (supported: Sequence, NFC");
  j = small();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKC"}}}}};
  EXPECT_ERROR_HAS(load(j), "normalizer.normalizers[1].type: normalizer 'NFKC' is not supported");
  j = small();
  j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  EXPECT_ERROR_HAS(load(j), "pre_tokenizer.type: pre-tokenizer 'BertPreTokenizer' is not supported");
  j = small();
  j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  EXPECT_ERROR_HAS(load(j), "decoder.type: decoder 'WordPiece' is not supported");
  j = small();
  j["post_processor"] = {{"type", "Weird"}};
  EXPECT_ERROR_HAS(load(j), "post_processor.type: post-processor 'Weird' is not supported");
  j = small();
  j["pre_tokenizer"] = {{"pattern", {{"String", " "}}}};
  EXPECT_ERROR_HAS(load(j), "pre_tokenizer.type: is missing");
}

TEST(TokenizerErrors, StageFields) {
  json j = small();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_ERROR_HAS(load(j), "pre_tokenizer.pattern.Regex: invalid regex at offset 9");
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
  EXPECT_ERROR_HAS(load(j), "pre_tokenizer.behavior: unknown split behavior 'Sideways'");
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "ab"}};
  EXPECT_ERROR_HAS(load(j), "pre_tokenizer.replacement: expected a single character, got 'ab'");
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "_"}, {"prepend_scheme", "sometimes"}};
  EXPECT_ERROR_HAS(load(j), "pre_tokenizer.prepend_scheme: expected \"always\", \"first\" or \"never\"");
  j = small();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}}},
                         {"special_tokens", json::object()}};
  EXPECT_ERROR_HAS(load(j), "post_processor.special_tokens: special token '<s>' is not listed in special_tokens");
  j["post_processor"]["special_tokens"] = {{"<s>", {{"id", "<s>"}, {"ids", {99}}, {"tokens", {"<s>"}}}}};
  EXPECT_ERROR_HAS(load(j), "post_processor: adds token id 99, which is not in the vocabulary (size 3)");
}

// tokenizer.json text whose `stage` is `depth` Sequences (list key `key`) around `leaf`, built
// as text: a DOM this deep is not what the test is about.
std::string nested_stage(const char* stage, const char* key, int depth, const std::string& leaf) {
  std::string head = small().dump(), open, close;
  for (int i = 0; i < depth; ++i) {
    open += std::string(R"({"type":"Sequence",")") + key + "\":[";
    close += "]}";
  }
  head.pop_back();  // the closing brace
  return head + ",\"" + stage + "\":" + open + leaf + close + "}";
}

TEST(TokenizerErrors, SequenceNestingIsCapped) {
  // 20000 nested normalizer Sequences took 24 s (a path string rebuilt at every level); now
  // the 65th level fails at once, naming the (shortened) path, the depth and the limit.
  auto parse = [](const std::string& text) { Tokenizer::from_json(text, "", "m/tokenizer.json"); };
  EXPECT_ERROR_HAS(parse(nested_stage("normalizer", "normalizers", 20000, R"({"type":"NFC"})")),
                   "m/tokenizer.json: normalizer.normalizers[0].normalizers[0].normalizers...normalizers[0]"
                   ".normalizers[0].normalizers[0] (129 steps): "
                   "normalizer Sequences are nested 65 deep, over the limit of 64 (hint: real tokenizer.json files");
  EXPECT_ERROR_HAS(parse(nested_stage("pre_tokenizer", "pretokenizers", 65, R"({"type":"Whitespace"})")),
                   "pre-tokenizer Sequences are nested 65 deep, over the limit of 64");
  EXPECT_ERROR_HAS(parse(nested_stage("decoder", "decoders", 65, R"({"type":"Fuse"})")),
                   "decoder Sequences are nested 65 deep, over the limit of 64");
  EXPECT_ERROR_HAS(parse(nested_stage("post_processor", "processors", 65, R"({"type":"ByteLevel"})")),
                   "post-processor Sequences are nested 65 deep, over the limit of 64");
  // 64 levels, the limit itself, still load and work.
  Tokenizer t = Tokenizer::from_json(nested_stage("normalizer", "normalizers", 64,
                                                  R"({"type":"Replace","pattern":{"String":"b"},"content":"a"})"),
                                     "", "m/tokenizer.json");
  EXPECT_EQ(t.encode("bb", false), (std::vector<int32_t>{0, 0}));
  EXPECT_NO_THROW(parse(nested_stage("decoder", "decoders", 64, R"({"type":"Fuse"})")));
}

TEST(TokenizerErrors, ConfigTokens) {
  EXPECT_ERROR_HAS(load(small(), R"({"bos_token": "<s>"})"),
                   "m/tokenizer_config.json: bos_token: token '<s>' is not in the vocabulary");
  EXPECT_ERROR_HAS(load(small(), R"({"add_bos_token": true})"),
                   "m/tokenizer_config.json: add_bos_token: is true but no bos_token is set");
  EXPECT_ERROR_HAS(load(small(), R"({"eos_token": 5})"),
                   "eos_token: expected a token string or {\"content\": ...}, got number");
  EXPECT_ERROR_HAS(load(small(), R"({"chat_template": 3})"), "chat_template: expected a string or a list");
}

TEST(TokenizerErrors, EncodeAndDecode) {
  json j = small();
  j["model"]["unk_token"] = "<unk>";  // named but absent: only an error once the text needs it
  Tokenizer t = Tokenizer::from_json(j.dump(), "");
  EXPECT_EQ(t.encode("ab"), (std::vector<int32_t>{2}));
  EXPECT_ERROR_HAS(t.encode("abc"), "unknown token '<unk>' is not in the vocabulary");
  EXPECT_ERROR_HAS(t.decode(std::vector<int32_t>{0, 3}),
                   "decode: token id 3 at position 1 is not in the vocabulary (size 3)");
  EXPECT_ERROR_HAS(t.id_to_piece(-1), "token id -1 is out of range");
}

VocabData gguf_gpt2() {
  VocabData v;
  v.model = "gpt2";
  v.pre = "gpt2";
  v.tokens = {"a", "b", "ab", "<|end|>"};
  v.types = {1, 1, 1, 3};
  v.merges = {"a b"};
  return v;
}

TEST(TokenizerErrors, GgufVocabularies) {
  VocabData v = gguf_gpt2();
  EXPECT_EQ(Tokenizer::from_vocab(v).encode("abab<|end|>"), (std::vector<int32_t>{2, 2, 3}));
  v.model = "bert";
  EXPECT_ERROR_HAS(Tokenizer::from_vocab(v), "GGUF vocabulary: tokenizer.ggml.model 'bert' is not supported");
  v = gguf_gpt2();
  v.pre = "mystery";
  std::string msg = error_of([&] { Tokenizer::from_vocab(v); });
  EXPECT_THAT(msg, HasSubstr("tokenizer.ggml.pre 'mystery' is not supported (supported: gpt2,"));
  EXPECT_THAT(msg, HasSubstr("llama-bpe"));
  v = gguf_gpt2();
  v.merges = {"a c"};
  EXPECT_ERROR_HAS(Tokenizer::from_vocab(v), "tokenizer.ggml.merges[0] 'a c' names unknown token 'c'");
  v.merges = {"b a"};
  EXPECT_ERROR_HAS(Tokenizer::from_vocab(v), "'b a' produces 'ba', which is not a token");
  v = gguf_gpt2();
  v.scores = {0.f};
  EXPECT_ERROR_HAS(Tokenizer::from_vocab(v), "GGUF vocabulary: 1 scores for 4 tokens");
  v = gguf_gpt2();
  v.bos_id = 9;
  EXPECT_ERROR_HAS(Tokenizer::from_vocab(v), "GGUF vocabulary: bos id 9 is out of range (4 tokens)");
  v = gguf_gpt2();
  v.add_bos = true;
  EXPECT_ERROR_HAS(Tokenizer::from_vocab(v), "add_bos is set but the tokenizer has no BOS token");
  v = gguf_gpt2();
  v.tokens.clear();
  v.types.clear();
  EXPECT_ERROR_HAS(Tokenizer::from_vocab(v), "tokenizer.ggml.tokens is empty");
}

// A number beyond double is nlohmann's out_of_range, not parse_error; it escaped from
// tokenizer_config.json's parse (tokenizer.json's SAX parse already reported it with a position).
TEST(TokenizerErrors, NumberBeyondDoubleIsAnError) {
  std::string e = load_error(small(), R"({"model_max_length": 1e400})");
  EXPECT_THAT(e, HasSubstr("tokenizer_config.json: invalid JSON: [json.exception.out_of_range.406] number overflow"));
  std::string text = small().dump();
  text.insert(text.size() - 1, R"(, "x": 1e400)");
  e = error_of([&] { Tokenizer::from_json(text, "", "m/tokenizer.json"); });
  EXPECT_THAT(e, HasSubstr("m/tokenizer.json: invalid JSON at line 1"));
  EXPECT_THAT(e, HasSubstr("number overflow"));
}

}  // namespace
}  // namespace tpro::test
