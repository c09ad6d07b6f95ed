// Sliding-window perplexity against the Hugging Face recipe computed in PyTorch (float64,
// tests/model/gen_golden.py), the stride edge cases and their messages, and the evaluations
// CSV round trip and its errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/backend_util.h"
#include "common/test_util.h"
#include "core/error.h"
#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "io/safetensors.h"
#include "train/perplexity.h"

using namespace tpro;
using ::testing::HasSubstr;
using tpro::test::error_of;

namespace {
const fs::path kCase = fs::path(TPRO_FIXTURES) / "golden" / "llama_gqa_tied";
}

TEST(Perplexity, MatchesPyTorchSlidingWindow) {
  Model m = load_model(kCase);
  LoraWeights lw = load_adapter(kCase, m);
  SafeTensorsFile g(kCase / "golden.safetensors");
  TensorView tv = g.view("ppl.tokens");
  std::vector<int32_t> toks(static_cast<int32_t*>(tv.data), static_cast<int32_t*>(tv.data) + tv.numel());
  const int32_t* cfg = static_cast<int32_t*>(g.view("ppl.config").data);
  PerplexityResult r = evaluate_perplexity(test::cpu(), m, &lw, toks, cfg[0], cfg[1]);
  EXPECT_EQ(r.n_scored, int64_t(toks.size()) - 1);  // every token but the first, exactly once
  EXPECT_NEAR(r.nll_sum, g.view("ppl.nll_sum").f32()[0], 1e-3);
  const double want = g.view("ppl.value").f32()[0];
  EXPECT_NEAR(r.perplexity(), want, 1e-4 * want);
}

TEST(Perplexity, WindowsAndErrors) {
  Model m = load_model(kCase);
  std::vector<int32_t> toks(30);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t(i * 7 % 97);
  // One window covering everything equals stride = max_length = n.
  PerplexityResult one = evaluate_perplexity(test::cpu(), m, nullptr, toks, 30, 30);
  EXPECT_EQ(one.n_windows, 1);
  EXPECT_EQ(one.n_scored, 29);
  PerplexityResult tiled = evaluate_perplexity(test::cpu(), m, nullptr, toks, 10, 10);
  EXPECT_EQ(tiled.n_windows, 3);
  // Disjoint windows (stride = max_length) cannot score each window's first token: the HF
  // recipe loses one token per window, and so do we.
  EXPECT_EQ(tiled.n_scored, 27);
  EXPECT_GT(tiled.nll_sum, 0.0);
  EXPECT_EQ(error_of([&] { evaluate_perplexity(test::cpu(), m, nullptr, toks, 11, 10); }),
            "perplexity stride 11 is larger than max_length 10 (tokens would be skipped)");
  EXPECT_EQ(error_of([&] { evaluate_perplexity(test::cpu(), m, nullptr, toks, 0, 10); }),
            "perplexity needs stride > 0 and max_length > 1 (got 0, 10)");
  EXPECT_EQ(error_of([&] { evaluate_perplexity(test::cpu(), m, nullptr, toks, 1, 1); }),
            "perplexity needs stride > 0 and max_length > 1 (got 1, 1)");
  EXPECT_EQ(error_of([&] { evaluate_perplexity(test::cpu(), m, nullptr, {5}, 1, 10); }),
            "perplexity needs at least 2 tokens of text, got 1");
  EXPECT_ERROR_HAS(evaluate_perplexity(test::cpu(), m, nullptr, {1, 500}, 1, 2),
                   "token id 500 is outside the model's vocabulary of 97");
  EXPECT_ERROR_HAS(evaluate_perplexity(test::cpu(), m, nullptr, {1, -1}, 1, 2),
                   "token id -1 is outside the model's vocabulary of 97");
}

TEST(Perplexity, EvaluationCsvRoundTrip) {
  fs::path csv = fs::temp_directory_path() / "tpro_ppl_test" / "evaluations.csv";
  fs::remove_all(csv.parent_path());
  EvaluationRow a{"m", "lora,with comma", "data.txt", "said \"hi\"", "2026-11-25 10:00:00", 12.5, 512, 2048, 1000};
  EvaluationRow b{"m2", "", "d2", "", "2026-11-25 11:00:00", 3.25, 256, 1024, 10};
  append_evaluation_csv(csv, a);
  append_evaluation_csv(csv, b);
  auto rows = read_evaluation_csv(csv);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].lora, "lora,with comma");
  EXPECT_EQ(rows[0].comment, "said \"hi\"");
  EXPECT_EQ(rows[0].perplexity, 12.5);
  EXPECT_EQ(rows[1].max_length, 1024);
  // Errors name the file and the line; blank lines are skipped but counted.
  write_file_atomic(csv, "model,lora\nx,y\n");
  EXPECT_ERROR_HAS(read_evaluation_csv(csv),
                   "evaluations.csv:2: expected 9 fields "
                   "(model,lora,dataset,perplexity,stride,max_length,tokens,date,comment), got 2");
  write_file_atomic(csv, "model,lora,dataset,perplexity,stride,max_length,tokens,date,comment\n"
                         "m,,d,3.5,256,1024,10,now,\n\nm,,d,high,256,1024,10,now,\n");
  EXPECT_ERROR_HAS(read_evaluation_csv(csv),
                   "evaluations.csv:4: perplexity, stride, max_length and tokens must be numbers, got 'high'");
  write_file_atomic(csv, "model,lora,dataset,perplexity,stride,max_length,tokens,date,comment\n"
                         "m,,d,12.5x,256,1024,10,now,\n");
  EXPECT_ERROR_HAS(read_evaluation_csv(csv), "must be numbers, got '12.5x'");
  // A missing file is no evaluations yet.
  EXPECT_TRUE(read_evaluation_csv(csv.parent_path() / "none.csv").empty());
}
