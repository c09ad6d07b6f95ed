// Early stopping on the eval loss (early_stopping_patience, early_stopping_threshold): the run
// stops after `patience` evaluations without an improvement larger than the threshold, the
// adapter saved is the best one seen, and its checkpoint survives save_total_limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "formats/load.h"
#include "train/checkpoint.h"
#include "train/run_control.h"
#include "trainer_test_util.h"

namespace tpro::test {
namespace {

using ::testing::HasSubstr;

Fixture eval_fixture(const std::string& name) {
  Fixture f = make_fixture(name);
  f.p.data.eval_split = 20;
  f.p.data.precize_slicing_overlap = false;
  f.p.eval_steps = 1;
  f.p.max_steps = 20;
  return f;
}

// A threshold no loss can beat makes the first evaluation the best for good: the run stops
// after the patience runs out (steps 2 and 3), and saves step 1's weights.
TEST(EarlyStopping, StopsAfterPatienceAndSavesTheBestAdapter) {
  Fixture f = eval_fixture("early_stop");
  f.p.early_stopping_patience = 2;
  f.p.early_stopping_threshold = 100.0;
  f.p.save_steps = 1;
  f.p.save_total_limit = 1;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_EQ(s.steps, 3);
  EXPECT_THAT(s.stop_reason, HasSubstr("early stopping: no eval loss better than "));
  EXPECT_THAT(s.stop_reason, HasSubstr("(step 1) by more than 100 in 2 evaluations"));
  EXPECT_TRUE(said(c, "is no improvement on the best")) << "each evaluation without improvement is said";
  EXPECT_TRUE(said(c, "saving the best adapter, from step 1"));

  // The best checkpoint (step 1) is kept besides the newest one (step 2; step 3 stops before
  // its save), though save_total_limit is 1.
  const auto kept = list_checkpoints(s.adapter_dir);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_THAT(kept[0].filename().string(), HasSubstr("checkpoint-1-"));
  EXPECT_THAT(kept[1].filename().string(), HasSubstr("checkpoint-2-"));

  const auto log = nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
  ASSERT_TRUE(log.contains("best_step")) << log.dump();
  EXPECT_EQ(log["best_step"], 1);
  EXPECT_EQ(log["best_checkpoint"], kept[0].filename().string());

  // The saved adapter holds step 1's weights, not later ones.
  const Model m = load_model(f.dir / "model");
  const LoraWeights saved = load_lora(s.adapter_dir, m), best = load_lora(kept[0], m), last = load_lora(kept[1], m);
  EXPECT_EQ(saved.params, best.params);
  EXPECT_NE(saved.params, last.params);
}

// Off by default; an improvement resets the count, so a run that keeps improving completes.
TEST(EarlyStopping, ImprovingRunsComplete) {
  Fixture f = eval_fixture("early_stop_improving");
  f.p.max_steps = 4;
  f.p.early_stopping_patience = 1;
  f.p.learning_rate = 2e-3;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_EQ(s.stop_reason, "completed");
  EXPECT_EQ(s.steps, 4);
}

TEST(EarlyStopping, NeedsEvaluations) {
  Fixture f = make_fixture("early_stop_refused");
  f.p.early_stopping_patience = 3;
  f.p.eval_steps = 0;
  RunControl ctl;
  Collected c;
  EXPECT_ERROR_HAS(run_training(f.p, ctl, collect(c)), "early_stopping_patience 3 needs evaluations during the run: set eval_steps > 0");
  f.p.eval_steps = 5;  // but no eval split or eval dataset
  EXPECT_ERROR_HAS(run_training(f.p, ctl, collect(c)),
                   "early_stopping_patience 3 needs evaluation data, and this run has none (hint: set eval_split_percent");
}

}  // namespace
}  // namespace tpro::test
