// Nothing lost: a NaN run stops at its first non-finite step with the step and the likely
// cause and leaves the adapter folder as it was; a diverging loss is warned about;
// always_override moves the old adapter aside only after every input is read and restores it
// when the run fails; one writer per adapter folder; leftovers of killed runs are cleaned and
// incomplete checkpoints are never resume points; a resume with changed parameters lists them;
// a stop ends the run at every moment (loading, slicing, allocating, inside the first step).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/trainer_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

namespace {

// Rewrites an f32 safetensors file with element 5 of tensor `name` set to NaN.
void poison_tensor(const fs::path& file, const std::string& name) {
  SafeTensorsWriter w;
  {
    TensorSource src = TensorSource::open_file(file);
    for (const std::string& n : src.names()) {
      TensorView t = src.get(n);
      ASSERT_EQ(t.dtype, DType::F32);
      std::vector<float> v(t.f32(), t.f32() + t.numel());
      if (n == name) v[5] = std::numeric_limits<float>::quiet_NaN();
      w.add_f32(n, t.shape, v.data());
    }
  }
  w.write(file);
}

// Every regular file under dir (relative name -> bytes), the lock file aside.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != kFolderLockName)
      m[fs::relative(e.path(), dir).string()] = read_file(e.path());
  return m;
}

bool any_contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x.find(s) != std::string::npos) return true;
  return false;
}

// A finished adapter in f.p's folder (3 steps, one checkpoint).
void train_good_adapter(Fixture& f) {
  f.p.max_steps = 3;
  f.p.save_steps = 2;
  RunControl c;
  Collected col;
  ASSERT_TRUE(run_training(f.p, c, collect(col)).saved);
  f.p.save_steps = 0;
}

TEST(Safety, NaNBaseWeightStopsAtStepOneAndKeepsTheAdapter) {
  Fixture f = make_fixture("nan_weight");
  train_good_adapter(f);
  const fs::path out = adapter_dir(f.p);
  const auto before = snapshot(out);
  poison_tensor(f.dir / "model" / "model.safetensors", "model.layers.1.mlp.up_proj.weight");

  Collected col;
  RunControl c;
  const std::string e = error_of([&] { run_training(f.p, c, collect(col)); });
  EXPECT_THAT(e, HasSubstr("step 4: the loss is nan"));  // the continued adapter's first step, after its 3
  EXPECT_THAT(e, HasSubstr("(not finite); training stopped before this step's update, and nothing of it is saved"));
  EXPECT_THAT(e, HasSubstr("The adapter folder " + out.string() + " is left as it was"));
  EXPECT_THAT(e, HasSubstr("Likely cause: the base weight model.layers.1.mlp.up_proj.weight holds a NaN or infinite value"));
  EXPECT_TRUE(col.steps.empty());
  EXPECT_EQ(snapshot(out), before);

  // The same with always_override: the old adapter is put back.
  f.p.always_override = true;
  Collected col2;
  RunControl c2;
  EXPECT_ERROR_HAS(run_training(f.p, c2, collect(col2)), "step 1: the loss is nan");
  EXPECT_TRUE(any_contains(col2.messages, "the previous adapter is restored in " + out.string()));
  EXPECT_EQ(snapshot(out), before);
  for (const auto& e2 : fs::directory_iterator(f.dir))
    EXPECT_THAT(e2.path().filename().string(), Not(HasSubstr(".replaced-")));
}

TEST(Safety, NaNInTheContinuedAdapterIsNamed) {
  Fixture f = make_fixture("nan_adapter");
  train_good_adapter(f);
  const fs::path out = adapter_dir(f.p);
  poison_tensor(out / "adapter_model.safetensors", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  const auto before = snapshot(out);
  RunControl c;
  Collected col;
  const std::string e = error_of([&] { run_training(f.p, c, collect(col)); });
  EXPECT_THAT(e, HasSubstr("step 4: the loss is nan"));  // the continued adapter's first step, after its 3
  EXPECT_THAT(e, HasSubstr("Likely cause: the LoRA weights continued from " + out.string() + " hold a NaN or infinite value"));
  EXPECT_EQ(snapshot(out), before);
}

TEST(Safety, DivergingLossIsWarnedAndLogged) {
  // A learned adapter (loss down from 7 to about 4.4), continued with a learning rate of 10 and
  // no clipping: the loss jumps back above 6 and stays there (as the issue's 2 -> 9.9).
  Fixture f = make_fixture("diverge");
  f.p.max_steps = 80;
  f.p.learning_rate = 0.05;
  f.p.lr_scheduler_type = "constant";
  f.p.warmup_steps = 0;
  f.p.grad_accumulation = 1;
  f.p.lora_dropout = 0.05;
  f.p.neft_noise_alpha = 0;
  RunControl c0;
  Collected col0;
  run_training(f.p, c0, collect(col0));
  EXPECT_FALSE(any_contains(col0.messages, "diverging"));  // a run that learns never warns

  f.p.max_steps = 30;
  f.p.learning_rate = 10;
  f.p.max_grad_norm = 0;
  RunControl c;
  Collected col;
  run_training(f.p, c, collect(col));
  ASSERT_TRUE(any_contains(col.messages, "warning: the loss is diverging: ")) << col.steps.back().loss;
  EXPECT_TRUE(any_contains(col.messages, "hint: lower --learning-rate (now 10)"));
  const json log = json::parse(read_file(adapter_dir(f.p) / "training_log.json"));
  ASSERT_TRUE(log.contains("warnings"));
  EXPECT_THAT(log["warnings"][0]["message"].get<std::string>(), HasSubstr("the loss is diverging"));
}

TEST(Safety, AlwaysOverrideValidatesBeforeTouchingTheOldAdapter) {
  Fixture f = make_fixture("override");
  train_good_adapter(f);
  const fs::path out = adapter_dir(f.p);
  const auto before = snapshot(out);
  write_file_atomic(f.dir / "text.txt", std::string("caf\xC3", 4));  // invalid UTF-8
  f.p.always_override = true;
  RunControl c;
  Collected col;
  EXPECT_ERROR_HAS(run_training(f.p, c, collect(col)), "UTF-8");
  EXPECT_EQ(snapshot(out), before);

  // With good data the old adapter is replaced, and its backup removed once the new one is saved.
  write_file_atomic(f.dir / "text.txt", kText);
  f.p.max_steps = 2;
  RunControl c2;
  Collected col2;
  ASSERT_TRUE(run_training(f.p, c2, collect(col2)).saved);
  EXPECT_TRUE(any_contains(col2.messages, "always_override: the previous adapter is moved to "));
  EXPECT_FALSE(fs::exists(out / "checkpoint-2-epoch0.57-loss" ) );
  EXPECT_TRUE(list_checkpoints(out).empty());  // the old run's checkpoint went with it
  EXPECT_NE(read_file(out / "adapter_model.safetensors"), before.at("adapter_model.safetensors"));
  for (const auto& e : fs::directory_iterator(f.dir))
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr(".replaced-")));
}

TEST(Safety, OneWriterPerAdapterFolder) {
  Fixture f = make_fixture("lock");
  FolderLock held = FolderLock::acquire(adapter_dir(f.p), "the adapter folder");
  RunControl c;
  Collected col;
  EXPECT_ERROR_HAS(run_training(f.p, c, collect(col)),
                   adapter_dir(f.p).string() + ": the adapter folder is in use by another tpro run (pid " +
                       std::to_string(::getpid()) + ")");
  held.release();
  f.p.max_steps = 1;
  EXPECT_TRUE(run_training(f.p, c, collect(col)).saved);
}

TEST(Safety, LeftoversOfKilledRunsAreCleanedAndHalfCheckpointsIgnored) {
  Fixture f = make_fixture("leftovers");
  train_good_adapter(f);
  const fs::path out = adapter_dir(f.p);
  const fs::path good = latest_checkpoint(out);
  ASSERT_FALSE(good.empty());
  // A half-deleted checkpoint of an older tpro (only trainer_state.json left) is no resume point.
  const fs::path half = out / "checkpoint-7-epoch1.00-loss1.5000";
  fs::create_directories(half);
  fs::copy_file(good / "trainer_state.json", half / "trainer_state.json");
  EXPECT_EQ(latest_checkpoint(out), good);
  EXPECT_THAT(checkpoint_incomplete(half), HasSubstr("adapter_config.json is missing"));
  // A checkpoint whose manifest disagrees with its files is incomplete too.
  EXPECT_EQ(checkpoint_incomplete(good), "");
  const fs::path cut = out / "checkpoint-8-epoch1.50-loss1.4000";
  fs::copy(good, cut);
  write_file_atomic(cut / "optimizer.safetensors", "x");
  EXPECT_THAT(checkpoint_incomplete(cut), HasSubstr("optimizer.safetensors has 1 bytes, the manifest says "));
  EXPECT_EQ(latest_checkpoint(out), good);
  f.p.resume_from_checkpoint = cut.string();
  RunControl c0;
  Collected col0;
  EXPECT_ERROR_HAS(run_training(f.p, c0, collect(col0)),
                   cut.string() + ": incomplete checkpoint (optimizer.safetensors has 1 bytes");

  // A checkpoint being written, one being pruned, an atomic file write, all by a killed pid.
  fs::create_directories(out / "checkpoint-9-epoch2.00-loss1.0000.tmp-999999");
  fs::create_directories(out / "checkpoint-1-epoch0.29-loss2.0000.deleting-999999");
  write_file_atomic(out / "adapter_model.safetensors.tmp-999999", "half");
  f.p.resume_from_checkpoint = "latest";
  f.p.max_steps = 4;
  RunControl c;
  Collected col;
  run_training(f.p, c, collect(col));
  EXPECT_TRUE(any_contains(col.messages, "resumed from " + good.string()));
  EXPECT_TRUE(any_contains(col.messages, "removed a leftover of a killed run: checkpoint-9-epoch2.00-loss1.0000.tmp-999999"));
  EXPECT_TRUE(any_contains(col.messages, "removed a leftover of a killed run: adapter_model.safetensors.tmp-999999"));
  EXPECT_FALSE(fs::exists(out / "checkpoint-9-epoch2.00-loss1.0000.tmp-999999"));
  EXPECT_FALSE(fs::exists(out / "checkpoint-1-epoch0.29-loss2.0000.deleting-999999"));
}

TEST(Safety, KilledMidReplacementRestoresTheOldFolder) {
  const fs::path d = fresh_dir("safety_old");
  fs::create_directories(d / "checkpoint-3-epoch1.00-loss1.0000.old-999999");
  write_file_atomic(d / "checkpoint-3-epoch1.00-loss1.0000.old-999999" / "trainer_state.json", "{}");
  fs::create_directories(d / "checkpoint-4-epoch1.00-loss1.0000");
  fs::create_directories(d / "checkpoint-4-epoch1.00-loss1.0000.old-999999");
  const auto done = clean_stale_temporaries(d);
  EXPECT_THAT(done, ::testing::UnorderedElementsAre(
                        "checkpoint-3-epoch1.00-loss1.0000.old-999999 (restored as checkpoint-3-epoch1.00-loss1.0000)",
                        "checkpoint-4-epoch1.00-loss1.0000.old-999999"));
  EXPECT_TRUE(fs::exists(d / "checkpoint-3-epoch1.00-loss1.0000" / "trainer_state.json"));
  EXPECT_FALSE(fs::exists(d / "checkpoint-4-epoch1.00-loss1.0000.old-999999"));
}

TEST(Safety, PruningRenamesBeforeDeleting) {
  Fixture f = make_fixture("prune");
  f.p.max_steps = 4;
  f.p.save_steps = 1;
  f.p.save_total_limit = 2;
  RunControl c;
  Collected col;
  run_training(f.p, c, collect(col));
  const auto left = list_checkpoints(adapter_dir(f.p));
  ASSERT_EQ(left.size(), 2u);
  EXPECT_THAT(left[0].filename().string(), HasSubstr("checkpoint-3-"));
  for (const auto& e : fs::directory_iterator(adapter_dir(f.p)))
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr(kDeletingTag)));
  for (const auto& ck : left) EXPECT_TRUE(fs::exists(ck / kCheckpointManifest));
}

TEST(Safety, ResumeWithChangedParametersListsThem) {
  Fixture f = make_fixture("changed");
  f.p.max_steps = 4;
  f.p.save_steps = 2;
  RunControl c;
  Collected col;
  run_training(f.p, c, collect(col, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step && e.record.step == 2) c.request_stop();
  }));
  f.p.resume_from_checkpoint = "latest";
  f.p.seed = 7;
  f.p.learning_rate = 1e-3;
  RunControl c2;
  Collected col2;
  run_training(f.p, c2, collect(col2));
  EXPECT_TRUE(any_contains(col2.messages, "with 2 changed parameters (the run is no longer an exact continuation): "
                                          "learning_rate 0.002 -> 0.001, seed 42 -> 7"));
  const json log = json::parse(read_file(adapter_dir(f.p) / "training_log.json"));
  EXPECT_THAT(log["warnings"][0]["message"].get<std::string>(), HasSubstr("2 changed parameters"));

  // The same parameters resume silently.
  Fixture g = make_fixture("unchanged");
  g.p.max_steps = 4;
  g.p.save_steps = 2;
  RunControl c3;
  run_training(g.p, c3, collect(col, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step && e.record.step == 2) c3.request_stop();
  }));
  g.p.resume_from_checkpoint = "latest";
  RunControl c4;
  Collected col4;
  run_training(g.p, c4, collect(col4));
  EXPECT_FALSE(any_contains(col4.messages, "changed parameter"));
}

// A stop requested when `trigger` is said ends the run with `expect` and writes nothing.
void expect_stop_when(const std::string& name, const std::string& trigger, const std::string& expect,
                      bool pack_weights = true) {
  SCOPED_TRACE(name);
  Fixture f = make_fixture("stop_" + name);
  f.p.pack_weights = pack_weights;  // off: the next phase after the activations is the first step
  RunControl c;
  Collected col;
  TrainSummary s = run_training(f.p, c, collect(col, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Message && e.text.find(trigger) != std::string::npos) c.request_stop();
  }));
  EXPECT_FALSE(s.saved);
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.steps, 0);
  EXPECT_THAT(s.stop_reason, HasSubstr(expect));
  EXPECT_TRUE(col.steps.empty());
  EXPECT_FALSE(fs::exists(adapter_dir(f.p)));
}

TEST(Safety, StopEndsTheRunAtEveryMoment) {
  expect_stop_when("loading", "loading model", "stopped while loading the model");
  expect_stop_when("slicing", "base weights held as", "stopped while slicing ");
  expect_stop_when("allocating", "trainable parameters", "stopped while allocating the activations");
  expect_stop_when("packing", "activations: ", "stopped while packing the weights");
  expect_stop_when("first_step", "activations: ", "stopped before the first step was done", false);
}

TEST(Safety, ActivationsAreSizedByTheLongestBlockNotTheCutoff) {
  Fixture f = make_fixture("cutoff");
  f.p.data.cutoff_len = 99999;
  f.p.max_steps = 1;
  RunControl c;
  Collected col;
  run_training(f.p, c, collect(col));
  EXPECT_TRUE(any_contains(col.messages, " rows of up to "));
  for (const auto& m : col.messages)
    if (m.find("activations: ") == 0) EXPECT_THAT(m, Not(HasSubstr("99999"))) << m;
}

}  // namespace

namespace {
// What the data pipeline skipped is said (and logged), not silently lost.
TEST(Safety, SkippedDatasetLinesAreSaid) {
  Fixture f = make_fixture("skipped");
  std::string rows;
  for (int i = 0; i < 6; ++i) rows += R"({"instruction": "Count to )" + std::to_string(i) + R"(.", "output": "Done."})" "\n";
  rows += "{not json\n";
  write_file_atomic(f.dir / "rows.jsonl", rows);
  f.p.data.raw_text_file.clear();
  f.p.data.dataset = (f.dir / "rows.jsonl").string();
  f.p.data.format = std::string(TPRO_SOURCE_DIR) + "/formats/alpaca-format.json";
  f.p.data.skip_bad_lines = true;
  f.p.max_steps = 1;
  RunControl c;
  Collected col;
  run_training(f.p, c, collect(col));
  EXPECT_TRUE(any_contains(col.messages, "data: 1 malformed JSONL lines skipped (skip_bad_lines)"));
  const json log = json::parse(read_file(adapter_dir(f.p) / "training_log.json"));
  EXPECT_THAT(log["warnings"][0]["message"].get<std::string>(), HasSubstr("1 malformed JSONL lines skipped"));
}
}  // namespace
