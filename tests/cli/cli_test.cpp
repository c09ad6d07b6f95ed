// The tpro binary as a user runs it: every subcommand is listed, the demo trains and saves,
// bad input gives one "tpro: error:" line and a non-zero exit, the other subcommands work on
// the demo's model, and Ctrl-C during training saves the adapter before exiting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file.h"

using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result run(const std::string& args) {
  const std::string cmd = std::string(TPRO_BINARY_DIR) + "/tpro " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// One demo run per test process (ctest runs each test in its own process, possibly in
// parallel, so the folder is named after the test): model, tokenizer, sample text, adapter.
const fs::path& demo_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::path(TPRO_BINARY_DIR) / "test_scratch" /
                 (std::string("cli_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(d);
    Result r = run("demo --dir " + d.string() + " --steps 6");
    EXPECT_EQ(r.code, 0) << r.out;
    return d;
  }();
  return dir;
}

}  // namespace

TEST(Cli, HelpListsEverySubcommand) {
  Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* sub : {"demo", "train", "generate", "perplexity", "tokenize", "check", "serve", "merge", "convert"})
    EXPECT_THAT(r.out, HasSubstr(sub));
}

TEST(Cli, DemoTrainsSavesAndGenerates) {
  const fs::path d = demo_dir();
  for (const char* f : {"model/config.json", "model/model.safetensors", "model/tokenizer.json",
                        "demo-lora/adapter_config.json", "demo-lora/adapter_model.safetensors",
                        "demo-lora/training_graph.png", "demo-lora/training_parameters.json"})
    EXPECT_TRUE(fs::exists(d / f)) << f;
}

TEST(Cli, BadInputGivesOneErrorLine) {
  Result r = run("train --model /nonexistent/model --lora-name x --raw-text-file /nonexistent/t.txt");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("tpro: error: "));
  EXPECT_THAT(r.out, HasSubstr("/nonexistent/model"));
  r = run("train --model m --lora-name x --raw-text-file t.txt --lora-rank 0");
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("lora_rank"));
  r = run("train --no-such-flag");
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("no-such-flag"));
  r = run("generate --model " + (demo_dir() / "model").string() + " --lora /nonexistent/adapter --prompt hi");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("adapter"));
}

TEST(Cli, SubcommandsOnTheDemoModel) {
  const std::string model = (demo_dir() / "model").string(), lora = (demo_dir() / "demo-lora").string();
  Result r = run("tokenize --model " + model + " --text hi --json");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("104"));  // 'h' in the byte-level vocabulary
  r = run("generate --model " + model + " --lora " + lora + " --prompt The --max-new-tokens 4 --temperature 0");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("The"));
  const fs::path csv = demo_dir() / "evaluations.csv";
  r = run("perplexity --model " + model + " --lora " + lora + " --file " + (demo_dir() / "sample.txt").string() +
          " --stride 64 --max-length 128 --csv " + csv.string());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("perplexity "));
  EXPECT_TRUE(fs::exists(csv));
  r = run("check --model " + model + " --raw-text-file " + (demo_dir() / "sample.txt").string() +
          " --cutoff-len 128 --sample-file " + (demo_dir() / "sample_blocks.txt").string());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Training blocks:"));
}

TEST(Cli, InterruptSavesTheAdapter) {
  const fs::path out = demo_dir() / "interrupted";
  fs::remove_all(out);
  // SIGINT after 3 s: the run stops after the current step and saves before exiting.
  const std::string cmd = "timeout --preserve-status -s INT 3 " + std::string(TPRO_BINARY_DIR) + "/tpro train --model " +
                          (demo_dir() / "model").string() + " --raw-text-file " + (demo_dir() / "sample.txt").string() +
                          " --output-dir " + out.string() + " --lora-name run --epochs 10000 --cutoff-len 64 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  const int st = pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << text;
  EXPECT_THAT(text, HasSubstr("stop requested"));
  EXPECT_TRUE(fs::exists(out / "run" / "adapter_model.safetensors")) << text;
  EXPECT_TRUE(fs::exists(out / "run" / "training_log.json"));
}
