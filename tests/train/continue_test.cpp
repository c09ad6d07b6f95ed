// Continuing an existing adapter (always_override off, Training PRO's default): the step and
// epoch counts go on from the earlier run, training_log.json and training_graph.json are
// appended to, checkpoint names never collide with the earlier run's, a checkpoint of the
// continued run resumes exactly; Training PRO's own logs (current_steps_adjusted) are read; bad
// logs are refused by file and key. And save_steps / eval_steps count micro-batches, as
// warmup_steps does (Training PRO: ceil(n / grad_accumulation) optimizer steps).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/error.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "train/trainer_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;
using json = nlohmann::json;

namespace {

std::vector<int64_t> checkpoint_steps(const fs::path& dir) {
  std::vector<int64_t> steps;
  for (const auto& c : list_checkpoints(dir)) steps.push_back(checkpoint_step(c));
  return steps;
}

std::vector<int64_t> graph_steps(const fs::path& dir) {
  std::vector<int64_t> steps;
  for (const auto& e : json::parse(read_file(dir / "training_graph.json"))) steps.push_back(e["current_steps"].get<int64_t>());
  return steps;
}

}  // namespace

TEST(Continue, StepsEpochsLogGraphAndCheckpointsGoOn) {
  Fixture f = make_fixture("continue");
  f.p.max_steps = 4;
  f.p.save_steps = 4;  // micro-batches: every 2 optimizer steps of 2 micro-batches
  RunControl c1;
  Collected first;
  TrainSummary s1 = run_training(f.p, c1, collect(first));
  ASSERT_EQ(first.steps.size(), 4u);
  const double epoch1 = first.steps.back().epoch;
  ASSERT_GT(epoch1, 0.0);
  EXPECT_EQ(checkpoint_steps(s1.adapter_dir), (std::vector<int64_t>{2, 4}));
  // A note of the first run, to be kept in the continued log.
  json log1 = json::parse(read_file(s1.adapter_dir / "training_log.json"));
  log1["warnings"] = json::array({{{"step", 3}, {"message", "first run's note"}}});
  write_file_atomic(s1.adapter_dir / "training_log.json", log1.dump());

  RunControl c2;
  Collected second;
  TrainSummary s2 = run_training(f.p, c2, collect(second));
  EXPECT_TRUE(said(second, "continuing the weights of the existing adapter in " + s1.adapter_dir.string() +
                               " from step 4, epoch " + cat(epoch1) + ": steps 5 to 8, its log and graph go on"));
  ASSERT_EQ(second.steps.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(second.steps[i].step, int64_t(i) + 5);
    EXPECT_DOUBLE_EQ(second.steps[i].epoch, epoch1 + first.steps[i].epoch) << "step " << i + 5;
    EXPECT_EQ(second.steps[i].lr, first.steps[i].lr) << "a fresh schedule, as Training PRO's new Trainer";
  }
  EXPECT_EQ(s2.steps, 8);
  EXPECT_EQ(s2.total_steps, 8);
  // Checkpoints 6 and 8 join 2 and 4: no name is reused.
  EXPECT_EQ(checkpoint_steps(s2.adapter_dir), (std::vector<int64_t>{2, 4, 6, 8}));
  EXPECT_EQ(graph_steps(s2.adapter_dir), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  const json log2 = json::parse(read_file(s2.adapter_dir / "training_log.json"));
  EXPECT_EQ(log2["current_steps"], 8);
  EXPECT_DOUBLE_EQ(log2["epoch"].get<double>(), 2 * epoch1);
  ASSERT_TRUE(log2.contains("warnings")) << log2.dump();
  EXPECT_EQ(log2["warnings"][0]["message"], "first run's note");
  // The elapsed time goes on too.
  const json graph = json::parse(read_file(s2.adapter_dir / "training_graph.json"));
  EXPECT_GE(graph[4]["elapsed"].get<double>(), graph[3]["elapsed"].get<double>());

  // A checkpoint of the continued run resumes exactly, with its offsets.
  fs::path ck6;
  for (const auto& c : list_checkpoints(s2.adapter_dir))
    if (checkpoint_step(c) == 6) ck6 = c;
  ASSERT_FALSE(ck6.empty());
  const json ts = json::parse(read_file(ck6 / "trainer_state.json"));
  EXPECT_EQ(ts["step_offset"], 4);
  EXPECT_DOUBLE_EQ(ts["epoch_offset"].get<double>(), epoch1);
  f.p.resume_from_checkpoint = ck6.string();
  RunControl c3;
  Collected third;
  TrainSummary s3 = run_training(f.p, c3, collect(third));
  ASSERT_EQ(third.steps.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(third.steps[i].step, int64_t(i) + 7);
    EXPECT_EQ(third.steps[i].loss, second.steps[i + 2].loss) << "step " << i + 7;
    EXPECT_EQ(third.steps[i].lr, second.steps[i + 2].lr) << "step " << i + 7;
  }
  EXPECT_EQ(s3.total_steps, 8);

  // An offset past the checkpoint's own step is refused by file and key.
  json bad = ts;
  bad["step_offset"] = 99;
  write_file_atomic(ck6 / "trainer_state.json", bad.dump());
  RunControl c4;
  EXPECT_ERROR_HAS(run_training(f.p, c4, collect(third)),
                   (ck6 / "trainer_state.json").string() + ": 'step_offset' must be a whole number from 0 to 'step' (6), got 99");
}

// A folder Training PRO continued before: its training_log.json's current_steps counts only its
// last run, current_steps_adjusted all of them; its graph entries have no grad norm or elapsed.
TEST(Continue, ReadsTrainingProLogs) {
  Fixture f = make_fixture("continue_tp");
  f.p.max_steps = 2;
  RunControl c1;
  Collected first;
  TrainSummary s1 = run_training(f.p, c1, collect(first));
  const fs::path dir = s1.adapter_dir;
  write_file_atomic(dir / "training_log.json",
                    json({{"loss", 1.5}, {"learning_rate", 1e-4}, {"epoch", 1.0}, {"current_steps", 40},
                          {"current_steps_adjusted", 121}, {"epoch_adjusted", 3.0}})
                        .dump());
  write_file_atomic(dir / "training_graph.json",
                    json::array({{{"current_steps", 81}, {"loss", 2.0}, {"learning_rate", 1e-4}, {"epoch", 2.0}},
                                 {{"current_steps", 121}, {"loss", 1.5}, {"learning_rate", 1e-4}, {"epoch", 3.0}}})
                        .dump());
  RunControl c2;
  Collected second;
  run_training(f.p, c2, collect(second));
  ASSERT_EQ(second.steps.size(), 2u);
  EXPECT_EQ(second.steps[0].step, 122);
  EXPECT_GT(second.steps[0].epoch, 3.0);
  EXPECT_EQ(graph_steps(dir), (std::vector<int64_t>{81, 121, 122, 123}));
  EXPECT_THAT(format_progress({123, 123, 3.5, 2.0, 1.0, 1e-4, NAN, 0, 121, 0.0}), HasSubstr("| 1.00 it/s |"));
}

// A checkpoint of the earlier run past its logged step (the log was lost): names still go past it.
TEST(Continue, StartsPastTheFolderCheckpoints) {
  Fixture f = make_fixture("continue_ck");
  f.p.max_steps = 2;
  f.p.save_steps = 4;
  RunControl c1;
  Collected first;
  TrainSummary s1 = run_training(f.p, c1, collect(first));
  ASSERT_EQ(checkpoint_steps(s1.adapter_dir), (std::vector<int64_t>{2}));
  fs::remove(s1.adapter_dir / "training_log.json");
  fs::remove(s1.adapter_dir / "training_graph.json");
  RunControl c2;
  Collected second;
  run_training(f.p, c2, collect(second));
  ASSERT_EQ(second.steps.size(), 2u);
  EXPECT_EQ(second.steps[0].step, 3);
  EXPECT_EQ(checkpoint_steps(s1.adapter_dir), (std::vector<int64_t>{2, 4}));
}

TEST(Continue, BadLogsAreRefusedByFileAndKey) {
  Fixture f = make_fixture("continue_bad");
  f.p.max_steps = 1;
  RunControl c1;
  Collected col;
  TrainSummary s1 = run_training(f.p, c1, collect(col));
  const fs::path log = s1.adapter_dir / "training_log.json", graph = s1.adapter_dir / "training_graph.json";
  const std::string good_graph = read_file(graph);
  const std::string hint = " (hint: fix or remove the file, or --always-override to start the adapter over)";
  struct Case {
    const char* file;
    std::string text, error;
  };
  const std::vector<Case> cases = {
      {"log", R"({"current_steps": -3})", log.string() + ": 'current_steps' must be a whole number >= 0, got -3" + hint},
      {"log", R"({"current_steps": 2.5})", "'current_steps' must be a whole number >= 0, got 2.5"},
      {"log", R"({"current_steps": 1e300})", "'current_steps' must be a whole number >= 0, got 1e+300"},
      {"log", R"({"current_steps_adjusted": "12"})", log.string() + ": 'current_steps_adjusted' must be a number, got \"12\""},
      {"log", R"({"epoch": -1})", log.string() + ": 'epoch' must be a number from 0 to 1e9, got -1" + hint},
      {"log", R"([1, 2])", log.string() + ": expected a JSON object, got array"},
      {"log", R"({"current_steps": 1)", log.string() + ": invalid JSON at byte"},
      {"log", R"({"warnings": "x"})", log.string() + ": 'warnings' must be a list, got string"},
      {"graph", R"([{"current_steps": 3, "epoch": 1, "learning_rate": 0}, {"current_steps": 2, "epoch": 1, "learning_rate": 0}])",
       graph.string() + ": entry 1: current_steps 2 comes after 3"},
      {"graph", R"([{"current_steps": 3, "epoch": -2, "learning_rate": 0}])",
       graph.string() + ": the entry of current_steps 3 has 'epoch' -2, expected a number from 0 to 1e9" + hint},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    write_file_atomic(log, "{}");
    write_file_atomic(graph, good_graph);
    write_file_atomic(std::string(c.file) == "log" ? log : graph, c.text);
    RunControl ctl;
    EXPECT_ERROR_HAS(run_training(f.p, ctl, collect(col)), c.error);
    EXPECT_EQ(read_file(std::string(c.file) == "log" ? log : graph), c.text) << "left as it was";
  }
}

// save_steps and eval_steps count micro-batches, as warmup_steps does: with 2 micro-batches a
// step, 3 of them mean every ceil(3 / 2) = 2 optimizer steps.
TEST(Continue, SaveAndEvalStepsCountMicroBatches) {
  Fixture f = make_fixture("micro_batches");
  f.p.max_steps = 4;
  f.p.save_steps = 3;
  f.p.eval_steps = 3;
  f.p.data.eval_split = 20;
  f.p.data.precize_slicing_overlap = false;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_EQ(checkpoint_steps(s.adapter_dir), (std::vector<int64_t>{2, 4}));
  ASSERT_EQ(c.evals.size(), 2u);
  EXPECT_EQ(c.evals[0].step, 2);
  EXPECT_EQ(c.evals[1].step, 4);
  EXPECT_TRUE(said(c, "checkpoints every 3 micro-batches (save_steps): every 2 optimizer steps of 2 micro-batches"));
  EXPECT_EQ(micro_batches_to_steps(0, 4), 0);
  EXPECT_EQ(micro_batches_to_steps(100, 3), 34);
  EXPECT_EQ(micro_batches_to_steps(6, 3), 2);
  EXPECT_EQ(micro_batches_to_steps(5, 0), 5);  // no accumulation: one micro-batch a step
}
