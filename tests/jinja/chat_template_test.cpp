// ChatTemplate API: choosing a template from tokenizer_config.json, the context apply() builds
// (as transformers does), key order of ordered_json vs json, {% generation %} spans,
// strftime_now, and one parsed template rendered concurrently from several threads.
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "core/error.h"
#include "core/file.h"
#include "jinja/chat_template.h"

using namespace tpro;
using Json = nlohmann::ordered_json;

TEST(ChatTemplate, SelectsTheTemplateFromConfigValue) {
  EXPECT_EQ(select_chat_template(Json("{{ x }}")), "{{ x }}");
  Json named = Json::array({{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}});
  EXPECT_EQ(select_chat_template(named), "D");
  EXPECT_EQ(select_chat_template(named, "tool_use"), "T");
}

TEST(ChatTemplate, ApplyPassesWhatTransformersPasses) {
  ChatTemplate t(
      "{{ messages | length }}|{{ tools is none }}|{{ documents is none }}|{{ add_generation_prompt }}|"
      "{{ bos_token }}|{{ custom }}",
      "t");
  Json msgs = Json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(t.apply(msgs, true, {{"bos_token", "<s>"}, {"custom", 7}}), "1|True|True|True|<s>|7");
  EXPECT_EQ(t.apply(msgs, false), "1|True|True|False||");
  Json tools = Json::array({{{"type", "function"}}});
  EXPECT_EQ(t.apply(msgs, false, {{"tools", tools}}), "1|False|True|False||");
  // The nlohmann::json overloads work the same.
  nlohmann::json plain = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(t.apply(plain, true, nlohmann::json{{"custom", "x"}}), "1|True|True|True||x");
}

TEST(ChatTemplate, OrderedJsonKeepsKeyOrderPlainJsonSortsIt) {
  ChatTemplate t("{{ d | tojson }}|{% for k in d %}{{ k }}{% endfor %}", "t");
  Json ordered = {{"d", {{"zeta", 1}, {"alpha", 2}}}};
  EXPECT_EQ(t.render(ordered), "{\"zeta\": 1, \"alpha\": 2}|zetaalpha");
  nlohmann::json sorted = {{"d", {{"zeta", 1}, {"alpha", 2}}}};
  EXPECT_EQ(t.render(sorted), "{\"alpha\": 2, \"zeta\": 1}|alphazeta");
}

TEST(ChatTemplate, GenerationBlocksReportByteSpans) {
  ChatTemplate t(
      "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>"
      "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{{ '\\n' }}{% endfor %}",
      "t");
  Json ctx = {{"messages", Json::array({{{"role", "user"}, {"content", "hé"}},
                                        {{"role", "assistant"}, {"content", "Ça va"}},
                                        {{"role", "user"}, {"content", "x"}},
                                        {{"role", "assistant"}, {"content", "ok"}}})}};
  RenderedChat r = t.render_with_spans(ctx);
  EXPECT_EQ(r.text, "<user>hé\n<assistant>Ça va</s>\n<user>x\n<assistant>ok</s>\n");
  ASSERT_EQ(r.generation_spans.size(), 2u);
  auto span = [&](size_t i) {
    return r.text.substr(r.generation_spans[i].first, r.generation_spans[i].second - r.generation_spans[i].first);
  };
  EXPECT_EQ(span(0), "Ça va</s>");
  EXPECT_EQ(span(1), "ok</s>");
  // Inside a macro the output is captured first: no span is reported for it.
  ChatTemplate m("{% macro g() %}{% generation %}x{% endgeneration %}{% endmacro %}{{ g() }}", "m");
  EXPECT_TRUE(m.render_with_spans(Json::object()).generation_spans.empty());
}

TEST(ChatTemplate, StrftimeNowUsesLocalTime) {
  ChatTemplate t("{{ strftime_now('%Y') }}|{{ strftime_now('%d %b %Y') | length }}", "t");
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  EXPECT_EQ(t.render(Json::object()), std::to_string(1900 + tm.tm_year) + "|11");
}

TEST(ChatTemplate, ParsedOnceRenderedConcurrently) {
  ChatTemplate t(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content | length %}"
      "{{ m.role }}:{{ m.content }};{% endfor %}{{ ns.n }}",
      "t");
  std::vector<std::string> outs(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < outs.size(); ++i) {
    threads.emplace_back([&, i] {
      Json msgs = Json::array();
      for (size_t k = 0; k <= i; ++k) msgs.push_back({{"role", "user"}, {"content", std::string(k + 1, 'a')}});
      for (int rep = 0; rep < 50; ++rep) outs[i] = t.apply(msgs, false);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(outs[0], "user:a;1");
  EXPECT_EQ(outs[2], "user:a;user:aa;user:aaa;6");
  EXPECT_EQ(outs[7].substr(outs[7].size() - 3), ";36");
}

TEST(ChatTemplate, EmptyTemplateAndTrailingNewline) {
  EXPECT_EQ(ChatTemplate("", "t").render(Json::object()), "");
  EXPECT_EQ(ChatTemplate("a\n", "t").render(Json::object()), "a");  // keep_trailing_newline=False
  EXPECT_EQ(ChatTemplate("a\n\n", "t").render(Json::object()), "a\n");
}

TEST(ChatTemplate, InvalidUtf8PassesThroughUnchanged) {
  ChatTemplate t("{{ s }}|{{ s | upper }}|{{ s | length }}|{{ s[::-1] }}", "t");
  nlohmann::json ctx;
  ctx["s"] = std::string("a\xff\xc3" "b");  // two stray bytes, as Python's surrogateescape keeps them
  EXPECT_EQ(t.render(ctx), std::string("a\xff\xc3" "b|A\xff\xc3" "B|4|b\xc3\xff" "a"));
}

TEST(ChatTemplate, LoadsFromAModelFolderAsTransformersDoes) {
  fs::path dir = fs::path(TPRO_BINARY_DIR) / "chat_template_load_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "chat_templates");
  Json cfg = {{"chat_template", Json::array({{{"name", "default"}, {"template", "cfg-default"}},
                                             {{"name", "rag"}, {"template", "cfg-rag"}}})}};
  write_file_atomic(dir / "tokenizer_config.json", cfg.dump());
  EXPECT_EQ(ChatTemplate::load(dir).render(Json::object()), "cfg-default");
  EXPECT_EQ(ChatTemplate::load(dir, "rag").render(Json::object()), "cfg-rag");
  EXPECT_EQ(ChatTemplate::load(dir / "tokenizer_config.json", "rag").origin(), (dir / "tokenizer_config.json").string());
  // chat_template.jinja and chat_templates/<name>.jinja take precedence over the config.
  write_file_atomic(dir / "chat_template.jinja", "file-default\n");
  write_file_atomic(dir / "chat_templates" / "rag.jinja", "file-rag");
  EXPECT_EQ(ChatTemplate::load(dir).render(Json::object()), "file-default");
  EXPECT_EQ(ChatTemplate::load(dir, "rag").render(Json::object()), "file-rag");
  EXPECT_EQ(ChatTemplate::load(dir / "chat_template.jinja").origin(), (dir / "chat_template.jinja").string());
  fs::remove_all(dir / "chat_templates");
  try {
    ChatTemplate::load(dir, "tool_use");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "tokenizer_config.json").string() +
                                         ": no chat template named 'tool_use' (available: 'default', 'rag')");
  }
  write_file_atomic(dir / "tokenizer_config.json", "{\"bos_token\": \"<s>\"}");
  fs::remove(dir / "chat_template.jinja");
  try {
    ChatTemplate::load(dir);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "tokenizer_config.json").string() +
                                         ": no \"chat_template\" (hint: add chat_template.jinja next to it or pass a "
                                         "template explicitly)");
  }
  fs::remove_all(dir);
}
