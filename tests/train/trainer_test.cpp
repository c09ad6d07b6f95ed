// The training run end to end on a tiny model: exact resume (N + N steps equal 2N straight),
// stop at loss, loss-threshold checkpoints and their names, the adapter folder's files,
// evaluation loss, gradient-accumulation lowering, and continuing an existing adapter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/byte_level_model.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace tpro;
using ::testing::HasSubstr;

namespace {

const char* kText =
    "Small models learn small texts. The lamp was lit at dusk. The keeper counted the steps. "
    "Ships passed far out on the water. The logbook was old. Rain ran sideways across the glass. "
    "He made himself a cup of tea when the sun rose. The tower shook in the storm.\n\n\n"
    "A second part begins here. It has its own sentences. They never mix with the first part. "
    "Counting keeps the breath even. The lens turned all night long.";

struct Fixture {
  fs::path dir;
  TrainParams p;
};

Fixture make_fixture(const std::string& name) {
  Fixture f;
  f.dir = fs::temp_directory_path() / ("tpro_trainer_" + name);
  fs::remove_all(f.dir);
  write_byte_level_model(f.dir / "model", byte_level_llama(32, 64, 2, 4, 2), 3);
  write_file_atomic(f.dir / "text.txt", kText);
  f.p.model = (f.dir / "model").string();
  f.p.raw_text_file = (f.dir / "text.txt").string();
  f.p.output_dir = f.dir.string();
  f.p.lora_name = "run";
  f.p.cutoff_len = 48;
  f.p.micro_batch_size = 2;
  f.p.grad_accumulation = 2;
  f.p.lora_rank = 4;
  f.p.lora_alpha = 8;
  f.p.lora_dropout = 0.1;  // exercises the dropout stream in resume
  f.p.training_projection = "all";
  f.p.learning_rate = 2e-3;
  f.p.lr_scheduler_type = "cosine";
  f.p.warmup_steps = 2;
  f.p.epochs = 1;
  f.p.eval_steps = 0;
  f.p.save_steps_under_loss = 0;
  f.p.neft_noise_alpha = 5;  // and the NEFTune stream
  return f;
}

struct Collected {
  std::vector<LogRecord> steps;
  std::vector<std::string> messages, checkpoints;
};

TrainObserver collect(Collected& c, std::function<void(const TrainEvent&)> also = nullptr) {
  return [&c, also](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step) c.steps.push_back(e.record);
    if (e.kind == TrainEvent::Kind::Message) c.messages.push_back(e.text);
    if (e.kind == TrainEvent::Kind::Checkpoint) c.checkpoints.push_back(e.text);
    if (also) also(e);
  };
}

}  // namespace

TEST(Trainer, ResumeIsExact) {
  Fixture a = make_fixture("resume_a");
  a.p.max_steps = 8;
  RunControl c1;
  Collected straight;
  run_training(a.p, c1, collect(straight));
  ASSERT_EQ(straight.steps.size(), 8u);

  Fixture b = make_fixture("resume_b");
  b.p.max_steps = 8;
  b.p.save_steps = 4;
  RunControl c2;
  Collected first;
  TrainSummary s1 = run_training(b.p, c2, collect(first, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step && e.record.step == 4) c2.request_stop();
  }));
  EXPECT_EQ(s1.steps, 4);
  EXPECT_EQ(s1.stop_reason, "stop requested");
  ASSERT_FALSE(latest_checkpoint(s1.adapter_dir).empty());

  b.p.resume_from_checkpoint = "latest";
  RunControl c3;
  Collected second;
  TrainSummary s2 = run_training(b.p, c3, collect(second));
  EXPECT_EQ(s2.steps, 8);
  ASSERT_EQ(second.steps.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(first.steps[i].loss, straight.steps[i].loss) << "step " << i + 1;
    EXPECT_EQ(second.steps[i].loss, straight.steps[i + 4].loss) << "step " << i + 5;
    EXPECT_EQ(second.steps[i].lr, straight.steps[i + 4].lr) << "step " << i + 5;
  }
  // The resumed run's log continues the first one.
  auto log = nlohmann::json::parse(read_file(s2.adapter_dir / "training_graph.json"));
  EXPECT_EQ(log.size(), 8u);
}

TEST(Trainer, StopAtLossAndOutputs) {
  Fixture f = make_fixture("stoploss");
  f.p.stop_at_loss = 1000.0;  // the first step's loss is below it
  f.p.max_steps = 10;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_EQ(s.steps, 1);
  EXPECT_THAT(s.stop_reason, HasSubstr("stop_at_loss"));
  for (const char* file : {"adapter_config.json", "adapter_model.safetensors", "training_parameters.json",
                           "training_log.json", "training_graph.json", "training_graph.png"})
    EXPECT_TRUE(fs::exists(s.adapter_dir / file)) << file;
  auto params = nlohmann::json::parse(read_file(s.adapter_dir / "training_parameters.json"));
  EXPECT_EQ(params["lora_rank"], 4);
  EXPECT_EQ(params["stop_at_loss"], 1000.0);
}

TEST(Trainer, LossThresholdCheckpointsAreNamedAndLowered) {
  Fixture f = make_fixture("threshold");
  f.p.save_steps_under_loss = 1000.0;  // every loss is below it at first
  f.p.max_steps = 3;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  ASSERT_GE(c.checkpoints.size(), 1u);
  EXPECT_THAT(c.checkpoints[0], HasSubstr("checkpoint-1-epoch"));
  EXPECT_THAT(c.checkpoints[0], HasSubstr("(loss below 1000)"));
  char buf[64];
  std::snprintf(buf, sizeof buf, "-loss%.4f", c.steps[0].loss);
  EXPECT_THAT(c.checkpoints[0], HasSubstr(buf));
  // After a save the threshold is 90% of that loss: a later save needs a 10% drop.
  for (size_t i = 1; i < c.checkpoints.size(); ++i) EXPECT_THAT(c.checkpoints[i], HasSubstr("loss below"));
  fs::path ck = latest_checkpoint(s.adapter_dir);
  for (const char* file : {"adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"})
    EXPECT_TRUE(fs::exists(ck / file)) << file;
}

TEST(Trainer, StopAtEpochAndControlFileMidRun) {
  Fixture f = make_fixture("stopepoch");
  f.p.epochs = 3;
  f.p.stop_at_epoch = 1;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_THAT(s.stop_reason, HasSubstr("stop_at_epoch"));
  EXPECT_LT(s.steps, s.total_steps);
  EXPECT_NEAR(c.steps.back().epoch, 1.0, 1e-9);

  // The CLI's control file, written while the run goes: stop_at_loss takes effect next step.
  Fixture g = make_fixture("control");
  g.p.max_steps = 50;
  RunControl ctl2;
  Collected c2;
  const fs::path control = adapter_dir(g.p) / kControlFileName;
  TrainSummary s2 = run_training(g.p, ctl2, collect(c2, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step && e.record.step == 2) write_control_file(control, {{"stop_at_loss", 1000.0}});
  }));
  EXPECT_EQ(s2.steps, 3);
  EXPECT_THAT(s2.stop_reason, HasSubstr("stop_at_loss"));
  EXPECT_FALSE(fs::exists(control));  // consumed
  bool applied = false;
  for (const auto& m : c2.messages) applied |= m.find("control: stop_at_loss") != std::string::npos;
  EXPECT_TRUE(applied);
}

TEST(Trainer, SaveTotalLimitKeepsTheNewest) {
  Fixture f = make_fixture("limit");
  f.p.save_steps = 1;
  f.p.save_total_limit = 2;
  f.p.max_steps = 4;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_EQ(c.checkpoints.size(), 4u);
  auto left = list_checkpoints(s.adapter_dir);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_THAT(left[0].filename().string(), HasSubstr("checkpoint-3-"));
  EXPECT_THAT(left[1].filename().string(), HasSubstr("checkpoint-4-"));
}

TEST(Trainer, EvalLossAccumulationWarningAndExistingAdapter) {
  Fixture f = make_fixture("eval");
  f.p.eval_split_percent = 20;
  f.p.grad_accumulation = 1000;  // more micro-batches than an epoch has
  f.p.max_steps = 2;
  f.p.eval_steps = 1;
  f.p.precize_slicing_overlap = false;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  bool warned = false;
  for (const auto& m : c.messages) warned |= m.find("gradient accumulation 1000 exceeds") != std::string::npos;
  EXPECT_TRUE(warned);
  auto log = nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
  EXPECT_TRUE(log.contains("eval_loss")) << log.dump();

  // Same name again: Training PRO keeps training the existing adapter's weights...
  RunControl c2;
  Collected again;
  run_training(f.p, c2, collect(again));
  bool continued = false;
  for (const auto& m : again.messages) continued |= m.find("continuing the weights of the existing adapter") != std::string::npos;
  EXPECT_TRUE(continued);
  // ...unless the rank differs.
  f.p.lora_rank = 8;
  RunControl c3;
  try {
    run_training(f.p, c3, collect(again));
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("the existing adapter has rank 4"));
  }
}
