// The tpro binary as a user runs it: every subcommand is listed, the demo's loss falls, it saves
// and its greedy continuations match `tpro generate`, `tokenize` prints exact ids and pieces,
// bad input gives one "tpro: error:" line and a non-zero exit, the other subcommands work on
// the demo's model, `merge` scores text as base + adapter does, `convert` PEFT -> GGUF -> PEFT
// gives back the same bytes, and Ctrl-C during training saves the adapter before exiting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/file.h"

using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

struct Result {
  int code = -1;
  std::string out;  // stdout, and stderr after it when with_log
};

// `tpro <args>`; stderr (the log) is dropped unless with_log.
Result run(const std::string& args, bool with_log = true) {
  const std::string cmd = std::string(TPRO_BINARY_DIR) + "/tpro " + args + (with_log ? " 2>&1" : " 2>/dev/null");
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

struct DemoRun {
  fs::path dir;
  std::string out;  // what `tpro demo` printed
};

// One demo run per test process (ctest runs each test in its own process, possibly in
// parallel, so the folder is named after the test): model, tokenizer, sample text, adapter.
const DemoRun& demo_run() {
  static const DemoRun demo = [] {
    fs::path d = fs::path(TPRO_BINARY_DIR) / "test_scratch" /
                 (std::string("cli_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(d);
    Result r = run("demo --dir " + d.string() + " --steps 6");
    EXPECT_EQ(r.code, 0) << r.out;
    return DemoRun{d, r.out};
  }();
  return demo;
}

const fs::path& demo_dir() { return demo_run().dir; }

// The text between `from` and the next `to` in s ("" when either is missing).
std::string between(const std::string& s, const std::string& from, const std::string& to) {
  const size_t a = s.find(from);
  if (a == std::string::npos) return "";
  const size_t b = s.find(to, a + from.size());
  return b == std::string::npos ? "" : s.substr(a + from.size(), b - a - from.size());
}

// The (step, loss) of every progress line ("step 3/6 (50.0%) | ... | loss 10.4423 | ...").
std::vector<std::pair<long long, double>> step_losses(const std::string& out) {
  std::vector<std::pair<long long, double>> v;
  for (size_t at = out.find("\nstep "); at != std::string::npos; at = out.find("\nstep ", at + 1)) {
    const size_t eol = out.find('\n', at + 1), loss = out.find("| loss ", at);
    long long step = 0, total = 0;
    if (loss < eol && std::sscanf(out.c_str() + at + 1, "step %lld/%lld", &step, &total) == 2)
      v.emplace_back(step, std::strtod(out.c_str() + loss + 7, nullptr));
  }
  return v;
}

// `tpro perplexity <args>` on the demo's sample text: the printed mean NLL, NaN when it fails.
double mean_nll(const std::string& args) {
  const fs::path d = demo_dir();
  Result r = run("perplexity " + args + " --file " + (d / "sample.txt").string() +
                 " --stride 64 --max-length 128 --csv " + (d / "nll.csv").string());
  EXPECT_EQ(r.code, 0) << r.out;
  double ppl = NAN, nll = NAN;
  const size_t at = r.out.rfind("perplexity ");
  if (at == std::string::npos || std::sscanf(r.out.c_str() + at, "perplexity %lf (mean nll %lf", &ppl, &nll) != 2)
    ADD_FAILURE() << "no perplexity line in: " << r.out;
  return nll;
}

}  // namespace

TEST(Cli, HelpListsEverySubcommand) {
  Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* sub : {"demo", "train", "generate", "perplexity", "tokenize", "check", "serve", "merge", "convert",
                          "data"})
    EXPECT_THAT(r.out, HasSubstr(sub));
}

TEST(Cli, DemoTrainsSavesAndGenerates) {
  const fs::path d = demo_dir();
  for (const char* f : {"model/config.json", "model/model.safetensors", "model/tokenizer.json",
                        "demo-lora/adapter_config.json", "demo-lora/adapter_model.safetensors",
                        "demo-lora/training_graph.png", "demo-lora/training_parameters.json"})
    EXPECT_TRUE(fs::exists(d / f)) << f;
  // Progress lines (the first, the last, and one every 5 s in between): the loss falls.
  const std::string& out = demo_run().out;
  const auto losses = step_losses(out);
  ASSERT_GE(losses.size(), 2u) << out;
  EXPECT_EQ(losses.front().first, 1);
  EXPECT_EQ(losses.back().first, 6);
  EXPECT_GT(losses.front().second, 5.0) << out;  // random weights: far above a trained model's
  EXPECT_LT(losses.back().second, losses.front().second - 0.2) << out;
  double final_loss = NAN;
  long long steps = 0;
  const size_t at = out.find("(final loss ");
  ASSERT_NE(at, std::string::npos) << out;
  ASSERT_EQ(std::sscanf(out.c_str() + at, "(final loss %lf after %lld steps)", &final_loss, &steps), 2) << out;
  EXPECT_EQ(steps, 6);
  EXPECT_NEAR(final_loss, losses.back().second, 1e-4);
  // Greedy continuations of the prompt with and without the adapter: long, and not the same.
  const std::string prompt = "The lighthouse stood";
  const std::string base = between(out, "\n[base model, no adapter] ", "\n\n[with the trained LoRA] ");
  const std::string tuned = between(out, "\n[with the trained LoRA] ", "\n\nadapter: ");
  ASSERT_EQ(base.rfind(prompt, 0), 0u) << out;
  ASSERT_EQ(tuned.rfind(prompt, 0), 0u) << out;
  EXPECT_GE(base.size(), prompt.size() + 32) << base;
  EXPECT_GE(tuned.size(), prompt.size() + 32) << tuned;
  EXPECT_NE(base, tuned);
  // `tpro generate` at temperature 0 prints the same text (its streamer holds back a trailing
  // partial UTF-8 character, which the demo prints as U+FFFD).
  auto held_back = [](std::string t) {
    while (t.size() >= 3 && t.compare(t.size() - 3, 3, "\xEF\xBF\xBD") == 0) t.resize(t.size() - 3);
    return t + "\n";
  };
  const std::string gen = " --prompt \"" + prompt + "\" --max-new-tokens 160 --temperature 0";
  Result r = run("generate --model " + (d / "model").string() + gen, false);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, held_back(base));
  r = run("generate --model " + (d / "model").string() + " --lora " + (d / "demo-lora").string() + gen,
          false);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, held_back(tuned));
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
  // perplexity's --lora is load_lora's: a file that is no GGUF adapter names both accepted forms.
  const std::string text = (demo_dir() / "sample.txt").string();
  r = run("perplexity --model " + (demo_dir() / "model").string() + " --lora " + text + " --file " + text);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("tpro: error: " + text + ": not a GGUF file (it does not start with the GGUF magic) and "
                               "not a folder (hint: a LoRA adapter is a PEFT adapter folder (adapter_config.json + "
                               "adapter_model.safetensors or adapter_model.bin) or a GGUF LoRA file)"));
  // generate: the new tokens are bounded by the model's context (one ctest process, one demo run).
  const std::string gen = "generate --model " + (demo_dir() / "model").string() + " --prompt hi --temperature 0 ";
  // Far too many: refused before the model loads, not a std::bad_alloc from the KV cache.
  r = run(gen + "--max-new-tokens 2000000000");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("tpro: error: --max-new-tokens 2000000000 is more than 1048576 (hint: "));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("bad_alloc")));
  // More than the model's context (the demo model's is 2048; "hi" is BOS + 2 bytes).
  r = run(gen + "--max-new-tokens 5000");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("tpro: error: --max-new-tokens 5000: the prompt (3 tokens) and the new tokens need "
                               "5003 tokens, more than the model's context of 2048"));
  EXPECT_THAT(r.out, HasSubstr("(hint: --max-new-tokens 2045 or less)"));
  r = run(gen + "--max-context 99999");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("tpro: error: --max-context 99999 is larger than the model's context of 2048 tokens"));
  // The largest that fits still runs.
  r = run(gen + "--max-new-tokens 2045", false);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("hi", 0), 0u) << r.out;
}

TEST(Cli, SubcommandsOnTheDemoModel) {
  const std::string model = (demo_dir() / "model").string(), lora = (demo_dir() / "demo-lora").string();
  // Byte-level: BOS, then one id per byte; the space's piece is GPT-2's "Ġ" (U+0120).
  Result r = run("tokenize --model " + model + " --text 'hi yo' --json", false);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "{\"count\":6,\"ids\":[256,104,105,32,121,111],"
                   "\"pieces\":[\"<|bos|>\",\"h\",\"i\",\"\xC4\xA0\",\"y\",\"o\"]}\n");
  r = run("tokenize --model " + model + " --text 'hi yo'", false);
  EXPECT_EQ(r.code, 0) << r.out;
  const std::string pad(23, ' ');  // pieces are padded to 24 characters
  EXPECT_EQ(r.out, "6 tokens\n"
                   " index       id  piece                   text\n"
                   "     0      256  <|bos|>                 [special]\n"
                   "     1      104  h" + pad + "\n"
                   "     2      105  i" + pad + "\n"
                   "     3       32  \xC4\xA0" + pad + "\" \"\n"
                   "     4      121  y" + pad + "\n"
                   "     5      111  o" + pad + "\n");
  r = run("tokenize --model " + model + " --text 'hi yo' --no-special --json");
  EXPECT_THAT(r.out, HasSubstr("{\"count\":5,\"ids\":[104,105,32,121,111],"));
  // Greedy generation: new text after the echoed prompt, and 4 tokens are the start of 24.
  const std::string gen = "generate --model " + model + " --lora " + lora + " --prompt The --temperature 0";
  Result four = run(gen + " --max-new-tokens 4", false);
  r = run(gen + " --max-new-tokens 24", false);
  EXPECT_EQ(four.code, 0) << four.out;
  EXPECT_EQ(r.code, 0) << r.out;
  ASSERT_EQ(r.out.rfind("The", 0), 0u) << r.out;
  EXPECT_GE(r.out.size(), std::string("The").size() + 16) << r.out;
  ASSERT_FALSE(four.out.empty());
  EXPECT_GT(four.out.size(), std::string("The\n").size()) << four.out;
  EXPECT_LT(four.out.size(), r.out.size());
  EXPECT_EQ(r.out.rfind(four.out.substr(0, four.out.size() - 1), 0), 0u) << four.out << " / " << r.out;
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
  // SIGINT once the first steps are done (a stop before the first step ends writes nothing;
  // the trainer tests cover that): the run stops after the current step and saves first.
  const fs::path log = out.string() + ".log";
  const std::string train = std::string(TPRO_BINARY_DIR) + "/tpro train --model " + (demo_dir() / "model").string() +
                            " --raw-text-file " + (demo_dir() / "sample.txt").string() + " --output-dir " + out.string() +
                            " --lora-name run --epochs 10000 --cutoff-len 64";
  const std::string cmd = "mkdir -p " + out.string() + "; " + train + " > " + log.string() + " 2>&1 & pid=$!; " +
                          "for i in $(seq 600); do grep -q 'step [1-9]' " + log.string() + " && break; sleep 0.1; done; " +
                          "kill -INT $pid; wait $pid; code=$?; cat " + log.string() + "; exit $code";
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

TEST(Cli, MergeEqualsBasePlusAdapter) {
  const fs::path model = demo_dir() / "model", lora = demo_dir() / "demo-lora", merged = demo_dir() / "merged";
  Result r = run("merge --model " + model.string() + " --lora " + lora.string() + " --out " + merged.string());
  ASSERT_EQ(r.code, 0) << r.out;
  // The demo's adapter: rank 16, alpha 32, all 7 projections of 4 layers.
  EXPECT_THAT(r.out,
              HasSubstr("merged 28 LoRA projections (scale 2) into " + merged.string() + " (Hugging Face folder, f32)"));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) EXPECT_TRUE(fs::exists(merged / f)) << f;
  EXPECT_EQ(tpro::read_file(merged / "tokenizer.json"), tpro::read_file(model / "tokenizer.json"));
  // W + s*B*A in one matrix scores the text as the base with the adapter beside it does, and
  // not as the bare base: the NLLs agree to f32 rounding and differ from the base's.
  const double with_lora = mean_nll("--model " + model.string() + " --lora " + lora.string());
  const double merged_nll = mean_nll("--model " + merged.string());
  const double base_nll = mean_nll("--model " + model.string());
  EXPECT_NEAR(merged_nll, with_lora, 2e-5);
  EXPECT_GT(std::abs(base_nll - with_lora), 1e-3);
  // Greedy decoding sees the same logits.
  const std::string gen = " --prompt The --max-new-tokens 24 --temperature 0";
  Result a = run("generate --model " + model.string() + " --lora " + lora.string() + gen);
  Result b = run("generate --model " + merged.string() + gen);
  EXPECT_EQ(a.code, 0) << a.out;
  EXPECT_EQ(b.code, 0) << b.out;
  EXPECT_EQ(a.out, b.out);
}

TEST(Cli, ConvertPeftToGgufAndBackKeepsTheTensors) {
  const fs::path lora = demo_dir() / "demo-lora", gguf = demo_dir() / "demo-lora.gguf", back = demo_dir() / "back-lora";
  // No --base: the adapter records the demo model's local folder.
  Result r = run("convert --from " + lora.string() + " --to " + gguf.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("converted PEFT -> GGUF: 28 LoRA pairs written to " + gguf.string()));
  EXPECT_EQ(tpro::read_file(gguf).substr(0, 4), "GGUF");
  r = run("convert --from " + gguf.string() + " --to " + back.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("converted GGUF -> PEFT: 28 LoRA pairs written to " + back.string()));
  // Byte for byte: the same tensors, names, shapes and order (the Q/K row permutation undone).
  EXPECT_TRUE(tpro::read_file(back / "adapter_model.safetensors") ==
              tpro::read_file(lora / "adapter_model.safetensors"));
  EXPECT_EQ(tpro::read_file(back / "adapter_config.json"), tpro::read_file(lora / "adapter_config.json"));
  // perplexity takes either form of --lora, as generate and merge do.
  EXPECT_NEAR(mean_nll("--model " + (demo_dir() / "model").string() + " --lora " + gguf.string()),
              mean_nll("--model " + (demo_dir() / "model").string() + " --lora " + lora.string()), 1e-6);
  // GGUF -> PEFT needs a folder, not a .gguf name.
  r = run("convert --from " + gguf.string() + " --to " + (demo_dir() / "x.gguf").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("it must be a folder (hint: --to my-lora/)"));
}

// Train Head from the command line: --lora-modulessave trains embed_tokens and lm_head too;
// merge and generate agree on them; convert to GGUF refuses them, as --save-gguf does up front.
TEST(Cli, TrainHeadMergesAndRefusesGguf) {
  const fs::path d = demo_dir(), model = d / "model", lora = d / "head-lora", merged = d / "head-merged";
  const std::string train = "train --model " + model.string() + " --raw-text-file " + (d / "sample.txt").string() +
                            " --output-dir " + d.string() + " --lora-name head-lora --lora-modulessave --max-steps 3 "
                            "--micro-batch-size 2 --cutoff-len 64 --lora-rank 4 --warmup-steps 0 --eval-steps 0 "
                            "--save-steps-under-loss 0 --always-override";
  Result r = run(train + " --save-gguf");
  EXPECT_EQ(r.code, 2) << r.out;  // a parameter error, before anything is read
  EXPECT_THAT(r.out, HasSubstr("save_gguf cannot write an adapter with lora_modulessave (Train Head)"));
  r = run(train);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Train Head: full copies of embed_tokens and lm_head"));
  EXPECT_THAT(tpro::read_file(lora / "adapter_config.json"), HasSubstr("\"modules_to_save\""));
  r = run("convert --from " + lora.string() + " --to " + (d / "head.gguf").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("the adapter trains full copies of embed_tokens and lm_head (modules_to_save, Train "
                               "Head), which a llama.cpp LoRA adapter cannot carry"));
  EXPECT_FALSE(fs::exists(d / "head.gguf"));
  r = run("merge --model " + model.string() + " --lora " + lora.string() + " --out " + merged.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NEAR(mean_nll("--model " + merged.string()),
              mean_nll("--model " + model.string() + " --lora " + lora.string()), 2e-5);
  const std::string gen = " --prompt The --max-new-tokens 16 --temperature 0";
  Result a = run("generate --model " + model.string() + " --lora " + lora.string() + gen);
  Result b = run("generate --model " + merged.string() + gen);
  EXPECT_EQ(a.code, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
}

// `tpro data`: Training PRO's tools end to end. Conversions and splits write new files and
// refuse to overwrite without --force; dump-blocks writes every block `tpro check` counts.
TEST(Cli, DataToolsConvertSplitAndDump) {
  const fs::path d = fs::path(TPRO_BINARY_DIR) / "test_scratch" / "cli_data_tools";
  fs::remove_all(d);
  fs::create_directories(d);
  tpro::write_file_atomic(d / "inst.json", R"([{"instruction": "Say hi", "output": "Hi!"},
    {"instruction": "Add", "input": "2+2", "output": "4"}, {"instruction": "Name a color", "output": "Blue"}])");
  Result r = run("data json-to-jsonl " + (d / "inst.json").string() + " --system 'Be kind.'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("wrote 3 chat rows to " + (d / "inst.jsonl").string()));
  const std::string jsonl = tpro::read_file(d / "inst.jsonl");
  EXPECT_THAT(jsonl, HasSubstr(R"({"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Add\n\n2+2"},)"
                               R"({"role":"assistant","content":"4"}]})"));
  r = run("data json-to-jsonl " + (d / "inst.json").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("tpro: error: " + (d / "inst.jsonl").string() + " exists (hint: --force to overwrite it)"));
  EXPECT_EQ(tpro::read_file(d / "inst.jsonl"), jsonl);
  EXPECT_EQ(run("data json-to-jsonl --force " + (d / "inst.json").string()).code, 0);

  tpro::write_file_atomic(d / "poems.txt", "Roses are red\n\n\n\nViolets are blue\r\n");
  r = run("data txt-to-jsonl " + (d / "poems.txt").string() + " --prompt 'Write a line.' -o " + (d / "p.jsonl").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("wrote 2 chat rows"));

  r = run("data split " + (d / "inst.jsonl").string() + " --eval-percent 34");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("inst_train.jsonl: 1 rows"));  // int(3 * 0.66)
  EXPECT_THAT(r.out, HasSubstr("inst_eval.jsonl: 2 rows"));
  r = run("data split " + (d / "inst.jsonl").string() + " --eval-percent 10 --parts 2");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("split needs one of --eval-percent or --parts"));
  r = run("data split " + (d / "inst.jsonl").string() + " --eval-percent 34");
  EXPECT_THAT(r.out, HasSubstr("inst_train.jsonl exists (hint: --force to overwrite it)"));

  // dump-blocks: as many lines as `tpro check` reports training blocks (more than its sample of 10).
  const std::string model = (demo_dir() / "model").string(), text = (demo_dir() / "sample.txt").string();
  const std::string flags = " --model " + model + " --raw-text-file " + text + " --cutoff-len 32";
  r = run("check" + flags + " --sample-file ''");
  ASSERT_EQ(r.code, 0) << r.out;
  const long long blocks = std::atoll(between(r.out, "Training blocks: ", "\n").c_str());
  ASSERT_GT(blocks, 10);
  r = run("data dump-blocks" + flags + " -o " + (d / "dump.jsonl").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string dump = tpro::read_file(d / "dump.jsonl");
  EXPECT_EQ(std::count(dump.begin(), dump.end(), '\n'), blocks);
  EXPECT_THAT(dump, HasSubstr(R"("split":"train","index":0,"kind":"text","source":"raw_text")"));
}

// generate --chat renders the template with --chat-template-kwargs, as training renders its
// rows; a bad value is refused naming its key, before the model loads.
TEST(Cli, GenerateChatTemplateKwargs) {
  const fs::path d = fs::path(TPRO_BINARY_DIR) / "test_scratch" / "cli_kwargs_model";
  fs::remove_all(d);
  fs::create_directories(d);
  for (const auto& e : fs::directory_iterator(demo_dir() / "model"))  // copies: shards may not link out
    fs::copy_file(e.path(), d / e.path().filename());
  tpro::write_file_atomic(d / "chat_template.jinja",
                          "[{{ enable_thinking }}]{% for m in messages %}{{ m.content }}{% endfor %}>");
  const std::string gen = "generate --model " + d.string() + " --prompt hi --temperature 0 --max-new-tokens 1 --chat";
  Result r = run(gen + " --chat-template-kwargs '{\"enable_thinking\": false}'", false);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("[False]hi>", 0), 0u) << r.out;
  r = run(gen, false);
  EXPECT_EQ(r.out.rfind("[]hi>", 0), 0u) << r.out;
  r = run(gen + " --chat-template-kwargs '{\"enable_thinking\": [1]}'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("tpro: error: --chat-template-kwargs: 'enable_thinking' must be a bool, number, string "
                               "or null, got array"));
  r = run("generate --model " + d.string() + " --prompt hi --chat-template-kwargs '{}'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("tpro: error: --chat-template-kwargs is for the chat template: add --chat"));
  fs::remove_all(d);
}
