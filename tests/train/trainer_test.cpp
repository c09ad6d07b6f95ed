// The training run end to end on a tiny model: exact resume (N + N steps equal 2N straight,
// for every optimizer),
// stop at loss, the adapter folder's files, checkpoints (every N steps, each epoch, under a
// lowering loss threshold) and their names, evaluation every N steps, gradient-accumulation
// lowering, continuing an existing adapter, and the errors of a resume that cannot happen.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "train/trainer_test_util.h"
#include "core/error.h"
#include "kernels/cpu/gemm.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/byte_level_model.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;


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

// Every optimizer's state goes into the checkpoint as it is (8-bit codes and block scales
// included), so 2 + 2 steps give the same losses, adapter and optimizer state, bit for bit,
// as 4 straight; a checkpoint resumed with another optimizer is refused by name.
TEST(Trainer, ResumeIsExactForEveryOptimizer) {
  fs::path last_ck;
  for (const char* name : {"sgd", "adagrad", "adafactor", "lion_32bit", "paged_adamw_8bit"}) {
    SCOPED_TRACE(name);
    auto setup = [&](const std::string& tag) {
      Fixture f = make_fixture(std::string("optim_") + name + tag);
      f.p.optimizer = name;
      f.p.sgd_momentum = 0.9;  // SGD with state to carry over
      f.p.weight_decay = 0.01;
      f.p.max_steps = 4;
      f.p.save_steps = 2;
      return f;
    };
    Fixture a = setup("_a"), b = setup("_b");
    RunControl c1, c2, c3;
    Collected straight, first, second;
    run_training(a.p, c1, collect(straight));
    run_training(b.p, c2, collect(first, [&](const TrainEvent& e) {
      if (e.kind == TrainEvent::Kind::Step && e.record.step == 2) c2.request_stop();
    }));
    ASSERT_EQ(first.steps.size(), 2u);
    b.p.resume_from_checkpoint = "latest";
    run_training(b.p, c3, collect(second));
    ASSERT_EQ(straight.steps.size(), 4u);
    ASSERT_EQ(second.steps.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(first.steps[i].loss, straight.steps[i].loss) << "step " << i + 1;
      EXPECT_EQ(second.steps[i].loss, straight.steps[i + 2].loss) << "step " << i + 3;
    }
    const fs::path ka = latest_checkpoint(adapter_dir(a.p)), kb = latest_checkpoint(adapter_dir(b.p));
    ASSERT_FALSE(ka.empty());
    ASSERT_FALSE(kb.empty());
    EXPECT_EQ(read_file(ka / "optimizer.safetensors"), read_file(kb / "optimizer.safetensors"));
    EXPECT_EQ(read_file(adapter_dir(a.p) / "adapter_model.safetensors"),
              read_file(adapter_dir(b.p) / "adapter_model.safetensors"));
    const bool paged = std::string(name) == "paged_adamw_8bit";
    int notes = 0;
    for (const auto& m : straight.messages) notes += m.find("paged_adamw_8bit runs as adamw_8bit") != std::string::npos;
    EXPECT_EQ(notes, paged ? 1 : 0);
    last_ck = kb;
  }
  // The last checkpoint holds 8-bit AdamW state: AdamW cannot take it up.
  Fixture f = make_fixture("optim_mismatch");
  f.p.optimizer = "adamw_torch";
  f.p.max_steps = 4;
  f.p.resume_from_checkpoint = last_ck.string();
  RunControl c;
  Collected col;
  EXPECT_THAT(test::error_of([&] { run_training(f.p, c, collect(col)); }),
              HasSubstr(last_ck.string() + ": the checkpoint holds the state of the adamw8bit optimizer but this run uses "
                        "adamw (hint: resume with the checkpoint's optimizer"));
}

TEST(Trainer, ComputeDtypeAndPackedWeights) {
  // bf16 compute learns like f32 (same data, seed and steps: losses within bf16 rounding, and
  // not identical: the bf16 path ran); packing changes only the summation order.
  auto losses = [](const std::string& name, const std::string& compute, bool pack, Collected& c) {
    Fixture f = make_fixture(name);
    f.p.compute_dtype = compute;
    f.p.pack_weights = pack;
    f.p.lora_dropout = 0;
    f.p.neft_noise_alpha = 0;
    f.p.max_steps = 6;
    RunControl ctl;
    run_training(f.p, ctl, collect(c));
    std::vector<double> l;
    for (const auto& r : c.steps) l.push_back(r.loss);
    return l;
  };
  Collected c32, c32p, c16;
  const auto f32 = losses("f32", "f32", false, c32), f32p = losses("f32p", "f32", true, c32p);
  const auto b16 = losses("bf16", "bf16", true, c16);
  ASSERT_EQ(f32.size(), 6u);
  ASSERT_EQ(b16.size(), 6u);
  for (size_t i = 0; i < f32.size(); ++i) {
    EXPECT_NEAR(f32p[i], f32[i], 1e-5 * f32[i]) << "packed, step " << i + 1;
    EXPECT_NEAR(b16[i], f32[i], 0.02 * f32[i]) << "bf16, step " << i + 1;
  }
  EXPECT_LT(f32.back(), f32.front());
  EXPECT_LT(b16.back(), b16.front());
  EXPECT_NE(b16, f32);
  EXPECT_FALSE(said(c32, "weights packed")) << "--no-pack-weights packs nothing";
  if (cpu_avx512()) EXPECT_TRUE(said(c32p, "weights packed for the matmul kernels"));
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
                           "training_log.json", "training_graph.json", "training_graph.png", "training_prompt.json"})
    EXPECT_TRUE(fs::exists(s.adapter_dir / file)) << file;
  // Training PRO's training_prompt.json: a raw-text run has no templates.
  EXPECT_EQ(read_file(s.adapter_dir / "training_prompt.json"), "{\n  \"template_type\": \"raw_text\"\n}");
  auto params = nlohmann::json::parse(read_file(s.adapter_dir / "training_parameters.json"));
  EXPECT_EQ(params["lora_rank"], 4);
  EXPECT_EQ(params["stop_at_loss"], 1000.0);
}

TEST(Trainer, LossThresholdCheckpointsAreNamedAndLowered) {
  Fixture f = make_fixture("threshold");
  f.p.save_steps_under_loss = 1000.0;  // the first loss is below it
  f.p.learning_rate = 1e-2;            // 10% drops every few steps (5 saves in 30 steps), not every step
  f.p.max_steps = 30;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  ASSERT_EQ(c.steps.size(), 30u);
  // The help text replayed on the logged losses: save when the loss is below the threshold,
  // then lower the threshold to 90% of the saved loss.
  std::vector<std::string> want;
  double threshold = f.p.save_steps_under_loss;
  for (const auto& r : c.steps) {
    if (r.loss >= threshold) continue;
    want.push_back(cat("/", checkpoint_name(r.step, r.epoch, r.loss), " (loss below ", threshold, ")"));
    threshold = 0.9 * r.loss;
  }
  // Saves after the first and skipped steps both happen, so a threshold that is never
  // lowered (a save every step) or never reset (one save) fails below.
  ASSERT_GE(want.size(), 3u);
  ASSERT_LT(want.size(), c.steps.size());
  ASSERT_EQ(c.checkpoints.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_THAT(c.checkpoints[i], EndsWith(want[i])) << "save " << i;
  EXPECT_THAT(c.checkpoints[0], HasSubstr("/checkpoint-1-epoch"));
  // Each checkpoint stores the lowered threshold, so a resumed run saves where the straight one does.
  auto saved = list_checkpoints(s.adapter_dir);
  ASSERT_EQ(saved.size(), want.size());
  for (const auto& ck : saved) {
    for (const char* file : {"adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json",
                             "training_prompt.json"})  // as Training PRO, its prompt is in each checkpoint too
      EXPECT_TRUE(fs::exists(ck / file)) << ck << " " << file;
    auto st = nlohmann::json::parse(read_file(ck / "trainer_state.json"));
    EXPECT_DOUBLE_EQ(st["loss_threshold"].get<double>(), 0.9 * st["loss"].get<double>()) << ck;
  }
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
  f.p.data.eval_split = 20;
  f.p.grad_accumulation = 1000;  // more micro-batches than an epoch has
  f.p.max_steps = 2;
  f.p.eval_steps = 1;
  f.p.data.precize_slicing_overlap = false;
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
  EXPECT_ERROR_HAS(run_training(f.p, c3, collect(again)), "the existing adapter has rank 4");
}

TEST(Trainer, EvaluatesEveryEvalStepsAndAtTheEnd) {
  Fixture f = make_fixture("eval_steps");
  f.p.data.eval_split = 20;
  f.p.data.precize_slicing_overlap = false;
  f.p.eval_steps = 4;  // micro-batches: every 2 optimizer steps of 2 micro-batches
  f.p.max_steps = 5;   // evaluations after steps 2 and 4, and the final one after step 5
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  ASSERT_EQ(c.evals.size(), 3u);
  auto graph = nlohmann::json::parse(read_file(s.adapter_dir / "training_graph.json"));
  ASSERT_EQ(graph.size(), 5u);  // an evaluation joins its step's entry, it adds none
  std::vector<int64_t> eval_steps;
  std::vector<double> eval_losses;
  for (const auto& e : graph) {
    if (!e.contains("eval_loss")) continue;
    eval_steps.push_back(e["current_steps"].get<int64_t>());
    eval_losses.push_back(e["eval_loss"].get<double>());
  }
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{2, 4, 5}));
  ASSERT_EQ(eval_losses.size(), 3u);
  for (size_t i = 0; i < c.evals.size(); ++i) {
    EXPECT_EQ(c.evals[i].step, eval_steps[i]);
    EXPECT_EQ(*c.evals[i].eval_loss, eval_losses[i]) << "evaluation " << i;
  }
  EXPECT_NE(eval_losses[0], eval_losses[2]);  // the adapter trained in between
  auto log = nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
  EXPECT_EQ(log["eval_loss"].get<double>(), eval_losses.back());
}

TEST(Trainer, SaveEachEpochNamesOneCheckpointPerEpoch) {
  Fixture f = make_fixture("each_epoch");
  f.p.epochs = 3;
  f.p.save_each_epoch = true;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  // The steps that end an epoch (epoch exactly 1, 2, 3) are the ones saved, named after their state.
  std::vector<std::string> want;
  for (const auto& r : c.steps)
    if (r.epoch == std::floor(r.epoch)) want.push_back(checkpoint_name(r.step, r.epoch, r.loss));
  ASSERT_EQ(want.size(), 3u);
  ASSERT_GT(c.steps.size(), 3u);  // so a save every step would fail
  EXPECT_THAT(want[0], HasSubstr("-epoch1.00-"));
  EXPECT_THAT(want[1], HasSubstr("-epoch2.00-"));
  EXPECT_THAT(want[2], HasSubstr("-epoch3.00-"));
  ASSERT_EQ(c.checkpoints.size(), 3u);
  auto saved = list_checkpoints(s.adapter_dir);
  ASSERT_EQ(saved.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(saved[i].filename().string(), want[i]);
    EXPECT_THAT(c.checkpoints[i], EndsWith("/" + want[i] + " (end of epoch)"));
    EXPECT_TRUE(fs::exists(saved[i] / "trainer_state.json")) << want[i];
  }
}

TEST(Trainer, GradAccumulationIsLoweredToOneEpoch) {
  Fixture f = make_fixture("ga_lowered");
  f.p.grad_accumulation = 1000;  // more micro-batches than an epoch has
  f.p.epochs = 2;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  long long want = 0, mb = 0, lowered = 0;
  for (const auto& m : c.messages)
    if (std::sscanf(m.c_str(),
                    "warning: gradient accumulation %lld exceeds the %lld micro-batches of an epoch; lowered to %lld",
                    &want, &mb, &lowered) == 3)
      break;
  EXPECT_EQ(want, 1000);
  ASSERT_GT(mb, 1);
  EXPECT_EQ(lowered, mb);
  // One optimizer step per epoch.
  EXPECT_EQ(s.total_steps, 2);
  EXPECT_EQ(s.steps, 2);
  ASSERT_EQ(c.steps.size(), 2u);
  EXPECT_EQ(c.steps[0].epoch, 1.0);
  EXPECT_EQ(c.steps[1].epoch, 2.0);
  // The same run as asking for the lowered value.
  Fixture g = make_fixture("ga_exact");
  g.p.grad_accumulation = lowered;
  g.p.epochs = 2;
  RunControl ctl2;
  Collected exact;
  run_training(g.p, ctl2, collect(exact));
  ASSERT_EQ(exact.steps.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(c.steps[i].loss, exact.steps[i].loss) << "step " << i + 1;
  for (const auto& m : exact.messages) EXPECT_THAT(m, Not(HasSubstr("gradient accumulation")));
}

TEST(Trainer, ResumeErrorsNameTheProblem) {
  // A run that dies after its first checkpoint leaves checkpoints but no adapter.
  Fixture f = make_fixture("resume_errors");
  f.p.save_steps = 1;
  f.p.max_steps = 3;
  RunControl ctl;
  Collected c;
  EXPECT_THROW(run_training(f.p, ctl, collect(c, [](const TrainEvent& e) {
                 if (e.kind == TrainEvent::Kind::Checkpoint) throw std::runtime_error("killed");
               })),
               std::runtime_error);
  const fs::path out = adapter_dir(f.p), ck = latest_checkpoint(out);
  ASSERT_FALSE(ck.empty());
  ASSERT_FALSE(fs::exists(out / "adapter_config.json"));
  RunControl c2;
  std::string e = test::error_of([&] { run_training(f.p, c2, collect(c)); });
  EXPECT_THAT(e, HasSubstr(out.string() + " holds checkpoints of an unfinished run"));
  EXPECT_THAT(e, HasSubstr("--resume-from-checkpoint latest"));

  // Nothing to resume.
  Fixture g = make_fixture("resume_none");
  g.p.resume_from_checkpoint = "latest";
  RunControl c3;
  e = test::error_of([&] { run_training(g.p, c3, collect(c)); });
  EXPECT_THAT(e, HasSubstr(adapter_dir(g.p).string() + ": no checkpoint to resume from"));

  // A folder that is not a checkpoint, a broken trainer_state.json, another rank.
  const fs::path not_ck = f.dir / "not-a-checkpoint";
  fs::create_directories(not_ck);
  f.p.resume_from_checkpoint = not_ck.string();
  e = test::error_of([&] { run_training(f.p, c2, collect(c)); });
  EXPECT_THAT(e, HasSubstr((not_ck / "trainer_state.json").string() + ": not found"));

  const std::string state = read_file(ck / "trainer_state.json");
  write_file_atomic(ck / "trainer_state.json", state.substr(0, state.size() / 2));
  f.p.resume_from_checkpoint = ck.string();
  e = test::error_of([&] { run_training(f.p, c2, collect(c)); });
  EXPECT_THAT(e, HasSubstr((ck / "trainer_state.json").string() + ": not valid JSON"));

  write_file_atomic(ck / "trainer_state.json", state);
  f.p.lora_rank = 8;
  e = test::error_of([&] { run_training(f.p, c2, collect(c)); });
  EXPECT_THAT(e, HasSubstr(ck.string() + ": checkpoint has rank 4 on 14 projections but this run asks for rank 8"));

  // The repaired checkpoint with its own rank resumes.
  f.p.lora_rank = 4;
  RunControl c4;
  TrainSummary s = run_training(f.p, c4, collect(c));
  EXPECT_EQ(s.steps, 3);
}
