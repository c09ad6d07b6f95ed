// train/params_text: the YAML and `tpro train` command line of a set of parameters read back to
// the same parameters (every field of the table set to a value other than its default), list
// only what differs from the defaults, and quote each argument so a POSIX shell hands it over
// byte for byte.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>

#include "core/file.h"
#include "train/params_cli.h"
#include "train/params_text.h"
#include "common/test_util.h"

using namespace tpro;
using json = nlohmann::json;
using testing::HasSubstr;

namespace {

// A value other than the field's default that the field accepts.
json other_value(const Field& f) {
  const json d = f.default_value();
  std::vector<json> tries;
  switch (f.type) {
    case FieldType::Bool: return !d.get<bool>();
    case FieldType::String: return "a b'c\"d,e $x\\ y\n#z: w";
    case FieldType::StringList:
      return f.choices.empty() ? json::array({"q_proj", "my, odd"}) : json::array({f.choices.back(), f.choices.front()});
    case FieldType::Choice:
      for (const auto& c : f.choices)
        if (c != d.get<std::string>()) return c;
      return d;
    case FieldType::Int: {
      const int64_t v = d.get<int64_t>();
      tries = {v + 1, v - 1, v + 7, 1};
      break;
    }
    case FieldType::Float: {
      const double v = d.get<double>();
      tries = {v + 0.25, v - 0.25, v * 0.5, v + 1e-9, 0.123456789012345};
      break;
    }
    case FieldType::Object:
      // Typed values and a string that YAML would read as another type unless quoted.
      tries = {json{{"enable_thinking", false}, {"depth", 3}, {"ratio", 0.5}, {"name", "a b: 'c' \"d\""}, {"yes", "true"}}};
      break;
  }
  for (const json& t : tries) {
    try {
      const json got = parse_field_value(f, t, "");
      if (got != d) return got;
    } catch (const Error&) {
    }
  }
  ADD_FAILURE() << "no other value for " << f.name;
  return d;
}

TrainParams everything_changed() {
  TrainParams p;
  for (const Field& f : param_fields()) f.put(p, other_value(f));
  // A list item holding a comma cannot come back from a comma-separated flag: keep lists plain.
  for (const Field& f : param_fields())
    if (f.type == FieldType::StringList && f.choices.empty()) f.put(p, json::array({"q_proj", "o_proj"}));
  return p;
}

TrainParams parse_argv(const std::vector<std::string>& argv) {
  CLI::App app{"tpro"};
  app.require_subcommand(1);
  TrainParams out;
  bind_cli(app.add_subcommand("train", "train a LoRA"), &out, false);
  std::vector<const char*> args;
  for (const auto& a : argv) args.push_back(a.c_str());
  app.parse(int(args.size()), args.data());
  return out;
}

}  // namespace

TEST(ParamsText, YamlReadsBackToEveryField) {
  const TrainParams p = everything_changed();
  const std::string yaml = params_to_yaml(p);
  TrainParams back;
  apply_yaml_text(yaml, back, "saved.yaml");
  for (const Field& f : param_fields()) EXPECT_EQ(f.get(back), f.get(p)) << f.name << "\n" << yaml;
  EXPECT_TRUE(back == p);
}

TEST(ParamsText, CommandLineReadsBackToEveryField) {
  TrainParams p = everything_changed();
  // The CLI loads copy_params_from first: a folder whose training_parameters.json sets nothing.
  const fs::path from = fs::temp_directory_path() / ("tpro_params_text_" + std::to_string(::getpid()));
  fs::create_directories(from);
  write_file_atomic(from / "training_parameters.json", "{}");
  p.copy_params_from = from.string();
  const std::vector<std::string> argv = params_to_argv(p);
  ASSERT_GE(argv.size(), 2u);
  EXPECT_EQ(argv[0], "tpro");
  EXPECT_EQ(argv[1], "train");
  const TrainParams back = parse_argv(argv);
  for (const Field& f : param_fields()) EXPECT_EQ(f.get(back), f.get(p)) << f.name;
}

TEST(ParamsText, OnlyWhatDiffersFromTheDefaults) {
  TrainParams p;
  p.model = "/models/tiny";
  p.lora_name = "my run";
  p.lora_rank = 8;
  p.use_rslora = true;
  p.data.add_bos_token = false;
  p.output_dir = "";  // an empty string differs from "loras" and stays a string
  EXPECT_EQ(shell_command(params_to_argv(p)),
            "tpro train --model=/models/tiny '--lora-name=my run' --output-dir= --lora-rank=8 --use-rslora "
            "--no-add-bos-token");
  const std::string yaml = params_to_yaml(p);
  EXPECT_THAT(yaml, HasSubstr("# General\nmodel: \"/models/tiny\"\nlora_name: \"my run\"\noutput_dir: \"\"\n"));
  EXPECT_THAT(yaml, HasSubstr("# LoRA\nlora_rank: 8\nuse_rslora: true\n"));
  EXPECT_THAT(yaml, HasSubstr("add_bos_token: false\n"));
  EXPECT_THAT(yaml, testing::Not(HasSubstr("lora_alpha")));
  TrainParams back;
  apply_yaml_text(yaml, back, "x.yaml");
  EXPECT_TRUE(back == p);
  EXPECT_EQ(params_to_argv(TrainParams{}), (std::vector<std::string>{"tpro", "train"}));
}

TEST(ParamsText, BadYamlNamesTheLineAndTheKey) {
  TrainParams p;
  EXPECT_THAT(test::error_of([&] { apply_yaml_text("lora_rank: 8\nlora_rank2: 3\n", p, "run.yaml"); }),
              HasSubstr("run.yaml:2:1: unknown key 'lora_rank2'"));
  EXPECT_THAT(test::error_of([&] { apply_yaml_text("lora_rank: [8\n", p, "run.yaml"); }),
              testing::StartsWith("run.yaml:2:1: invalid YAML: "));
  EXPECT_THAT(test::error_of([&] { apply_yaml_text("lora_rank: many\n", p, "run.yaml"); }),
              HasSubstr("run.yaml:1:1: lora_rank expects"));
}

// The shell gets each argument back byte for byte (printf prints them NUL-separated).
TEST(ParamsText, ShellQuotingSurvivesTheShell) {
  const std::vector<std::string> args = {"plain", "", "it's", "a b", "$HOME", "`x`", "\"q\"", "back\\slash",
                                         "new\nline", "--flag=a b", "*", "~", "tab\there", "ünï"};
  EXPECT_EQ(shell_quote("plain/path-1.txt"), "plain/path-1.txt");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
  std::string cmd = "printf '%s\\0'";
  for (const auto& a : args) cmd += " " + shell_quote(a);
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[256];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  ASSERT_EQ(pclose(f), 0);
  std::string want;
  for (const auto& a : args) want += a + std::string(1, '\0');
  EXPECT_EQ(out, want);
}
