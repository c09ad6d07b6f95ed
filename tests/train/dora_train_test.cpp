// DoRA training end to end (use_dora): resume stays exact with LoRA+ and dropout for AdamW,
// Adafactor (the magnitudes are vectors: unfactored second moments) and 8-bit AdamW (their own
// blocks); the adapter folder is PEFT's DoRA (use_dora, lora_magnitude_vector); a batch's loss
// falls over five steps, after which the cached weight norms are those of the new parameters; and
// use_dora with save_gguf is refused before the run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/backend_util.h"
#include "common/test_util.h"
#include "common/tiny_config.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/optimizer_step.h"
#include "train/params.h"
#include "train/trainer_test_util.h"

using namespace tpro;
using ::testing::HasSubstr;

TEST(DoraTraining, ResumeIsExactWithLoraPlusForEveryOptimizerKind) {
  for (const char* name : {"adamw_torch", "adafactor", "adamw_8bit"}) {
    SCOPED_TRACE(name);
    auto setup = [&](const std::string& tag) {
      test::Fixture f = test::make_fixture(std::string("dora_") + name + tag);
      f.p.use_dora = true;
      f.p.loraplus_lr_ratio = 4;
      f.p.optimizer = name;
      f.p.max_steps = 4;
      f.p.save_steps = 2;
      return f;
    };
    test::Fixture a = setup("_a"), b = setup("_b");
    RunControl c1, c2, c3;
    test::Collected straight, first, second;
    run_training(a.p, c1, test::collect(straight));
    run_training(b.p, c2, test::collect(first, [&](const TrainEvent& e) {
      if (e.kind == TrainEvent::Kind::Step && e.record.step == 2) c2.request_stop();
    }));
    b.p.resume_from_checkpoint = "latest";
    run_training(b.p, c3, test::collect(second));
    ASSERT_EQ(straight.steps.size(), 4u);
    ASSERT_EQ(second.steps.size(), 2u);
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(second.steps[i].loss, straight.steps[i + 2].loss) << "step " << i + 3;
    EXPECT_EQ(read_file(adapter_dir(a.p) / "adapter_model.safetensors"),
              read_file(adapter_dir(b.p) / "adapter_model.safetensors"));
    const auto cfg = nlohmann::json::parse(read_file(adapter_dir(a.p) / "adapter_config.json"));
    EXPECT_EQ(cfg.at("use_dora"), true);
    SafeTensorsFile f(adapter_dir(a.p) / "adapter_model.safetensors");
    EXPECT_EQ(f.view("base_model.model.model.layers.1.mlp.up_proj.lora_magnitude_vector").shape,
              std::vector<int64_t>{64});
  }
}

TEST(DoraTraining, LearnsAndNormsAfterAStepAreThoseOfTheNewParameters) {
  const fs::path d = fs::temp_directory_path() / "tpro_dora_step_model";
  fs::remove_all(d);
  LlamaConfig c = test::tiny_config(32, 64, 64);
  c.max_position = 64;
  write_random_model(d, c, 6, DType::F32, 0.2f);
  const Model m = load_model(d);
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dora = true;
  lc.targets.fill(true);
  Rng rng(4);
  LoraWeights lw = make_lora(m.cfg, lc, rng);
  init_dora_magnitudes(test::cpu(), m, lw);
  std::vector<int32_t> toks;
  for (int64_t i = 0; i < 16; ++i) toks.push_back(int32_t((i * 13 + 5) % 64));
  Activations a;
  make_activations(a, test::cpu(), m.cfg, &lw, 2, 8);
  const BatchView mb{2, 8, toks.data(), nullptr, nullptr, nullptr};
  LoraState st(test::cpu(), lw);
  const double before = evaluate_loss(m, &st, a, {&mb, 1});
  OptimConfig oc;
  for (int64_t step = 1; step <= 5; ++step) optimizer_step(m, st, a, {&mb, 1}, 1e-2, step, 3, oc);
  const double loss = evaluate_loss(m, &st, a, {&mb, 1});
  EXPECT_LT(loss, before - 0.1) << "DoRA did not learn the batch";
  st.download(lw);
  LoraState fresh(test::cpu(), lw);
  EXPECT_EQ(evaluate_loss(m, &fresh, a, {&mb, 1}), loss);
  double moved = 0;  // the step trained the magnitudes too
  LoraWeights start = make_lora(m.cfg, lc, rng);
  init_dora_magnitudes(test::cpu(), m, start);
  for (const auto& s : lw.slots)
    for (int64_t o = 0; o < s.out; ++o) moved = std::max(moved, double(std::abs(lw.params[s.m + size_t(o)] - start.params[s.m + size_t(o)])));
  EXPECT_GT(moved, 1e-3);
}

TEST(DoraTraining, GgufExportIsRefusedBeforeTheRun) {
  test::Fixture f = test::make_fixture("dora_gguf");
  f.p.use_dora = true;
  f.p.save_gguf = true;
  EXPECT_THAT(test::error_of([&] { validate(f.p); }),
              HasSubstr("use_dora with save_gguf: llama.cpp's GGUF LoRA adapters carry only A and B"));
}
