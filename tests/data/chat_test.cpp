// Chat rows and assistant-only masks, checked character by character with the byte codec and
// a ChatML renderer written here (the real-template, real-vocabulary check is in
// chat_template_test.cpp).
#include <gtest/gtest.h>

#include "data/chat.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ojson = nlohmann::ordered_json;
using ::testing::HasSubstr;

namespace {

std::string chatml(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (gen) s += "<|im_start|>assistant\n";
  return s;
}

// Llama-2 style: BOS per exchange, EOS after each answer, no generation prompt.
std::string llama2(const std::vector<ChatMessage>& msgs, bool) {
  std::string s;
  for (const auto& m : msgs) s += m.role == "user" ? "<s>[INST] " + m.content + " [/INST]" : " " + m.content + " </s>";
  return s;
}

std::vector<ChatMessage> convo() {
  return {{"system", "S"}, {"user", "Hi"}, {"assistant", "Yo"}, {"user", "Q"}, {"assistant", "A"}};
}

}  // namespace

TEST(Chat, OnlyAssistantTurnsAreTrained) {
  Block b = chat_block(convo(), chatml, byte_codec(), {false, false}, false, "r");
  EXPECT_EQ(show(b, byte_codec()),
            "<[|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n]"
            "Yo<|im_end|>\n"
            "[<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n]"
            "A<|im_end|>\n");
  EXPECT_EQ(b.kind, BlockKind::kChat);
  EXPECT_EQ(b.n_trained(), int64_t(std::string("Yo<|im_end|>\nA<|im_end|>\n").size()));
}

TEST(Chat, TrainOnInputsTrainsEverything) {
  Block b = chat_block(convo(), chatml, byte_codec(), {false, false}, true, "r");
  EXPECT_EQ(b.n_trained(), b.size() - 1);
}

TEST(Chat, TemplateBosAndEosAreNeverDoubled) {
  std::vector<ChatMessage> m = {{"user", "Q"}, {"assistant", "A"}, {"user", "R"}, {"assistant", "B"}};
  // The template starts with <s> (BOS) and ends with </s> (EOS); add_bos/add_eos add nothing.
  Block b = chat_block(m, llama2, byte_codec(), {true, true}, false, "r");
  EXPECT_EQ(show(b, byte_codec()), "<s>[[INST] Q [/INST]] A </s>[<s>[INST] R [/INST]] B </s>");
  // add_bos off removes the template's leading BOS, as Training PRO does.
  b = chat_block(m, llama2, byte_codec(), {false, true}, false, "r");
  EXPECT_EQ(show(b, byte_codec()), "[[INST] Q [/INST]] A </s>[<s>[INST] R [/INST]] B </s>");
  // No generation prompt in this template: the span starts right after the user turn.
}

TEST(Chat, AddedEosFollowsTheLastTokensMask) {
  std::vector<ChatMessage> m = {{"user", "Q"}, {"assistant", "A"}};
  Block b = chat_block(m, chatml, byte_codec(), {true, true}, false, "r");
  EXPECT_EQ(b.tokens.back(), kByteEos);
  EXPECT_EQ(b.mask.back(), 1);
  EXPECT_EQ(b.tokens.front(), kByteBos);
}

TEST(Chat, ParsesOpenAiAndShareGpt) {
  ojson oa = ojson::parse(R"({"messages": [{"role": "system", "content": "S"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "assistant", "content": "c"}]})");
  auto m = parse_chat_row(oa, "r");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1].content, "ab");
  ojson sg = ojson::parse(R"({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]})");
  m = parse_chat_row(sg, "r");
  EXPECT_EQ(m[0].role, "user");
  EXPECT_EQ(m[1].role, "assistant");
  EXPECT_TRUE(is_chat_row(sg));
  EXPECT_FALSE(is_chat_row(ojson{{"instruction", "x"}}));
}

TEST(Chat, BadRowsNameTheMessage) {
  auto err = [](const char* j) { return error_of([&] { parse_chat_row(ojson::parse(j), "c.jsonl:3"); }); };
  EXPECT_NE(err(R"({"messages": []})").find("c.jsonl:3: \"messages\" must be a non-empty array"), std::string::npos);
  EXPECT_NE(err(R"({"messages": [{"role": "bot", "content": "x"}]})")
                .find("c.jsonl:3 messages[0]: unknown role \"bot\""), std::string::npos);
  EXPECT_NE(err(R"({"conversations": [{"from": "human"}]})")
                .find("c.jsonl:3 conversations[0]: missing \"value\""), std::string::npos);
  EXPECT_NE(err(R"({"messages": [{"role": "user", "content": 5}]})").find("content must be a string, got number"),
            std::string::npos);
}

TEST(Chat, TemplateThatRewritesEarlierTurnsIsAnError) {
  // Renders the last assistant turn differently from earlier ones: prefixes don't line up.
  auto odd = [](const std::vector<ChatMessage>& msgs, bool gen) {
    std::string s;
    for (size_t i = 0; i < msgs.size(); ++i)
      s += msgs[i].role + ":" + (i + 1 == msgs.size() ? msgs[i].content : "...") + "\n";
    return s + (gen ? "assistant:" : "");
  };
  std::string e = error_of([&] { chat_block(convo(), odd, byte_codec(), {}, false, "c.jsonl:9"); });
  EXPECT_NE(e.find("c.jsonl:9: the chat template renders the first 3 messages differently from the whole conversation and assistant turn 2 cannot be located"), std::string::npos) << e;
  EXPECT_NE(e.find("train_on_inputs"), std::string::npos) << e;
  EXPECT_NO_THROW(chat_block(convo(), odd, byte_codec(), {}, true, "c.jsonl:9"));
}

TEST(Chat, ReasoningContentIsKeptForTheTemplate) {
  ojson row = ojson::parse(R"({"messages": [{"role": "user", "content": "q"},
      {"role": "assistant", "content": "a", "reasoning_content": "why"},
      {"role": "assistant", "content": "b", "reasoning_content": null}]})");
  auto m = parse_chat_row(row, "r");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1].reasoning_content, std::optional<std::string>("why"));
  EXPECT_FALSE(m[2].reasoning_content);  // null: absent, as the template would see it
  EXPECT_FALSE(m[0].reasoning_content);
  // The template sees the key only where the row had it.
  ChatRender r = jinja_chat_render(
      "{% for m in messages %}{{ m.role }}={{ m.reasoning_content is defined }}:{{ m.reasoning_content }};{% endfor %}",
      "t", "", "");
  EXPECT_EQ(r(m, false), "user=False:;assistant=True:why;assistant=False:;");

  auto err = [](const char* j) { return error_of([&] { parse_chat_row(ojson::parse(j), "c.jsonl:4"); }); };
  EXPECT_THAT(err(R"({"messages": [{"role": "assistant", "content": "a", "reasoning_content": 3}]})"),
              HasSubstr("c.jsonl:4 messages[0]: \"reasoning_content\" must be a string on an assistant message, got number"));
  EXPECT_THAT(err(R"({"messages": [{"role": "user", "content": "a", "reasoning_content": "x"}]})"),
              HasSubstr("c.jsonl:4 messages[0]: \"reasoning_content\" must be a string on an assistant message, got one "
                        "on a user message (hint:"));
}

// chat_template_kwargs reach the template as variables; every bad key or value is refused,
// naming the key.
TEST(Chat, TemplateKwargs) {
  ChatRender r = jinja_chat_render("{{ enable_thinking }}/{{ effort }}/{{ n }}", "t", "", "",
                                   nlohmann::json{{"enable_thinking", false}, {"effort", "low"}, {"n", 2}});
  EXPECT_EQ(r({}, false), "False/low/2");
  auto err = [](const nlohmann::json& kw) { return error_of([&] { check_template_kwargs(kw, "--chat-template-kwargs"); }); };
  EXPECT_EQ(err(nlohmann::json{{"enable_thinking", true}, {"x", nullptr}, {"y", 1.5}}), "(no error)");
  EXPECT_THAT(err(nlohmann::json::array()),
              HasSubstr("--chat-template-kwargs: expected an object of template variables ({\"enable_thinking\": false}), got array"));
  EXPECT_THAT(err(nlohmann::json{{"enable_thinking", {1, 2}}}),
              HasSubstr("--chat-template-kwargs: 'enable_thinking' must be a bool, number, string or null, got array"));
  EXPECT_THAT(err(nlohmann::json{{"opts", {{"a", 1}}}}), HasSubstr("'opts' must be a bool, number, string or null, got object"));
  EXPECT_THAT(err(nlohmann::json{{"messages", "x"}}),
              HasSubstr("'messages' is set by tpro itself and cannot be a chat_template_kwargs key"));
  EXPECT_THAT(err(nlohmann::json{{"eos_token", "x"}}), HasSubstr("'eos_token' is set by tpro itself"));
  EXPECT_THAT(err(nlohmann::json{{"enable-thinking", true}}),
              HasSubstr("'enable-thinking' is not a template variable name (expected letters, digits and _"));
  EXPECT_THAT(err(nlohmann::json{{"1x", true}}), HasSubstr("'1x' is not a template variable name"));
  EXPECT_THAT(err(nlohmann::json{{"s", std::string(kMaxTemplateKwargString + 1, 'a')}}),
              HasSubstr("'s' is a string of 4097 bytes, at most 4096 are allowed"));
  nlohmann::json many = nlohmann::json::object();
  for (size_t i = 0; i <= kMaxTemplateKwargs; ++i) many[cat("k", i)] = true;
  EXPECT_THAT(err(many), HasSubstr("33 template variables, at most 32 are allowed"));
}
