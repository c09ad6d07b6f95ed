// The dataset check: Training PRO's step/warmup/save formulas worked by hand, the longest
// block and cutoff suggestion, the gradient-accumulation warning, and the decoded sample.
#include <gtest/gtest.h>

#include "core/file.h"
#include "data/check.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;

namespace {

// n one-sentence blocks with cutoff 16 (14-byte sentences).
std::string numbered_text(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "Aaaa aaaa " + std::string(1, char('0' + i / 10)) + char('0' + i % 10) + ". ";
  return s;
}

}  // namespace

TEST(Check, TrainingProFormulas) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", numbered_text(100)).string();
  o.cutoff_len = 16;
  o.precize_slicing_overlap = false;
  CheckReport r = check_dataset(o, byte_codec(), nullptr, 4, 2, 3);
  EXPECT_EQ(r.blocks, 100);
  EXPECT_EQ(r.rows, 100);
  EXPECT_EQ(r.total_steps, 75);      // ceil(100/4) * 3
  EXPECT_EQ(r.steps_per_epoch, 25);  // ceil(75/3)
  EXPECT_EQ(r.warmup_suggested, 8);  // min(ceil(100/2)*2 = 100, ceil(7.5) = 8, 25)
  EXPECT_EQ(r.save_every_min, 8);    // ceil(75/10)
  EXPECT_EQ(r.save_every_max, 15);   // ceil(75/5)
  EXPECT_EQ(r.effective_grad_accumulation, 2);
  EXPECT_EQ(r.optimizer_steps_per_epoch, 13);  // 25 micro-batches in groups of 2
  EXPECT_FALSE(r.grad_accumulation_too_high);
  EXPECT_EQ(r.tokens, 100 * 14);  // BOS + 13 stripped bytes each
  EXPECT_EQ(r.trained_tokens, 100 * 13);
  EXPECT_EQ(r.longest, 14);
  EXPECT_EQ(r.suggested_cutoff, 32);
  // Warmup capped by an epoch: few steps.
  r = check_dataset(o, byte_codec(), nullptr, 50, 1, 1.5);
  EXPECT_EQ(r.total_steps, 3);  // int(ceil(100/50) * 1.5)
  EXPECT_EQ(r.steps_per_epoch, 2);
  EXPECT_EQ(r.warmup_suggested, 1);
}

TEST(Check, GradAccumulationBeyondTheDataIsLowered) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", numbered_text(10)).string();
  o.cutoff_len = 16;
  o.precize_slicing_overlap = false;
  CheckReport r = check_dataset(o, byte_codec(), nullptr, 4, 8, 1);
  EXPECT_TRUE(r.grad_accumulation_too_high);
  EXPECT_EQ(r.effective_grad_accumulation, 3);
  std::string text = format_check_report(r);
  EXPECT_NE(text.find("WARNING: gradient accumulation 8 exceeds the data: an epoch has only 3 micro-batches of 4; "
                      "the trainer will lower it to 3"), std::string::npos) << text;
  EXPECT_NE(text.find("Total number of steps: 3"), std::string::npos) << text;
}

TEST(Check, LongestRowAndCutoffSuggestion) {
  ScratchDir dir;
  DataOptions o;
  std::string rows;
  for (int n : {20, 100, 40}) rows += "{\"t\": \"" + std::string(size_t(n), 'x') + "\"}\n";
  o.dataset = dir.file("d.jsonl", rows).string();
  o.format = dir.file("f.json", R"({"t": "%t%"})").string();
  o.cutoff_len = 64;
  CheckReport r = check_dataset(o, byte_codec(), nullptr, 1, 1, 1);
  EXPECT_EQ(r.longest, 101);  // BOS + 100
  EXPECT_EQ(r.suggested_cutoff, 128);
  EXPECT_EQ(r.over_cutoff, 1);
  std::string text = format_check_report(r);
  EXPECT_NE(text.find("Longest block: 101 tokens; suggested cutoff_len: 128 (current 64)"), std::string::npos) << text;
  EXPECT_NE(text.find("Longer than cutoff_len: 1 rows would be trimmed (1 trimmed, 0 eliminated)"), std::string::npos);
  o.eliminate_long_blocks = true;
  r = check_dataset(o, byte_codec(), nullptr, 1, 1, 1);
  EXPECT_EQ(r.blocks, 2);
  EXPECT_NE(format_check_report(r).find("1 rows would be eliminated"), std::string::npos);
}

TEST(Check, ReportCountsSkippedBadLines) {
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("d.jsonl", "{\"t\": \"aa\"}\nnot json\n{\"t\": \"bb\"}\n{\"t\": \n{\"t\": \"cc\"}\n").string();
  o.format = dir.file("f.json", R"({"t": "%t%"})").string();
  o.skip_bad_lines = true;
  CheckReport r = check_dataset(o, byte_codec(), nullptr, 1, 1, 1);
  EXPECT_EQ(r.blocks, 3);
  EXPECT_EQ(r.stats.bad_lines_skipped, 2);
  std::string text = format_check_report(r);
  EXPECT_NE(text.find("Dataset: 3 rows, 2 bad lines skipped, 0 dropped with no trained token"), std::string::npos)
      << text;
  // Nothing skipped: the clause is left out.
  o.dataset = dir.file("ok.jsonl", "{\"t\": \"aa\"}\n").string();
  text = format_check_report(check_dataset(o, byte_codec(), nullptr, 1, 1, 1));
  EXPECT_NE(text.find("Dataset: 1 rows, 0 dropped with no trained token"), std::string::npos) << text;
}

TEST(Check, SampleShowsMasks) {
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("d.jsonl", "{\"q\": \"Hi\", \"a\": \"Yo\"}\n").string();
  o.format = dir.file("f.json", R"({"q,a": "Q: %q%\nA: %a%"})").string();
  o.train_only_after = "A:";
  CheckReport r = check_dataset(o, byte_codec(), nullptr, 1, 1, 1);
  ASSERT_EQ(r.sample.size(), 1u);
  auto path = dir.path() / "sample.txt";
  write_check_sample(path, r, byte_codec());
  std::string text = read_file(path);
  EXPECT_NE(text.find("=== sample 1: formatted block from dataset (row 1), 12 tokens, 3 trained ==="), std::string::npos)
      << text;
  EXPECT_NE(text.find("\u27e6<s>Q: Hi\nA:\u27e7 Yo\n"), std::string::npos) << text;
}

TEST(Check, SampleTakesAFewOfEachKind) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", numbered_text(30)).string();
  o.cutoff_len = 32;
  CheckReport r = check_dataset(o, byte_codec(), nullptr, 1, 1, 1);
  ASSERT_EQ(r.sample.size(), 10u);
  int overlaps = 0;
  for (const Block& b : r.sample) overlaps += b.kind == BlockKind::kOverlap;
  EXPECT_EQ(overlaps, 5);
}

TEST(Check, BadArguments) {
  DataOptions o;
  EXPECT_ERROR_HAS(check_dataset(o, byte_codec(), nullptr, 0, 1, 1), "micro_batch_size must be >= 1");
  EXPECT_ERROR_HAS(check_dataset(o, byte_codec(), nullptr, 1, 1, 0), "epochs must be > 0");
}
