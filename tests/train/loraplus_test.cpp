// LoRA+ (loraplus_lr_ratio): one optimizer step with ratio 16 equals two plain steps from the
// same start and gradients, its A matrices those of the step at lr and its B matrices those of
// the step at 16·lr, for every optimizer (the per-tensor ones, Adafactor and 8-bit AdamW, run
// each group's tensors; the elementwise ones each run of same-group tensors); the optimizer
// state, which does not depend on lr, equals the plain step's. Trainer: resume stays exact, the
// ratio is a training parameter and never part of adapter_config.json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/backend_util.h"
#include "common/tiny_config.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "train/checkpoint.h"
#include "train/optimizer_step.h"
#include "train/trainer_test_util.h"

using namespace tpro;
using ::testing::HasSubstr;

namespace {
struct PlusFixture {
  Model m;
  LoraWeights start;
  std::vector<int32_t> toks;
  Activations a;
  BatchView mb;
  static constexpr int64_t kB = 2, kT = 8, kStep = 3;

  PlusFixture() {
    const fs::path d = fs::temp_directory_path() / "tpro_loraplus_model";
    fs::remove_all(d);
    LlamaConfig c = test::tiny_config(32, 64, 64);
    c.max_position = 64;
    write_random_model(d, c, 5, DType::F32, 0.2f);
    m = load_model(d);
    LoraConfig lc;
    lc.r = 4;
    lc.alpha = 8;
    lc.targets.fill(true);
    Rng rng(3);
    start = make_lora(m.cfg, lc, rng);
    for (const auto& s : start.slots)  // B non-zero: A gets gradients too
      for (size_t i = s.b; i < s.b + size_t(s.out * lc.r); ++i) start.params[i] = 0.05f * std::sin(float(i));
    for (int64_t i = 0; i < kB * kT; ++i) toks.push_back(int32_t((i * 29 + 3) % 64));
    make_activations(a, test::cpu(), m.cfg, &start, kB, kT);
    mb = BatchView{kB, kT, toks.data(), nullptr, nullptr, nullptr};
  }

  LoraWeights step(OptimKind kind, double lr, double ratio) {
    LoraWeights lw = start;
    set_optimizer(lw, kind);
    OptimConfig oc;
    oc.max_grad_norm = 0.0;
    oc.sgd.momentum = 0.9;
    oc.adam.weight_decay = oc.adafactor.weight_decay = oc.lion.weight_decay = 0.01;
    oc.loraplus_lr_ratio = ratio;
    LoraState st(test::cpu(), lw);
    optimizer_step(m, st, a, {&mb, 1}, lr, kStep, 11, oc);
    st.download(lw);
    return lw;
  }
};
}  // namespace

TEST(LoraPlus, BLearnsAtRatioTimesLrAndAAtLr) {
  PlusFixture fx;
  constexpr double kLr = 1e-3, kRatio = 16.0;
  for (OptimKind kind : {OptimKind::adamw, OptimKind::sgd, OptimKind::adagrad, OptimKind::adafactor, OptimKind::lion,
                         OptimKind::adamw8bit}) {
    SCOPED_TRACE(optim_kind_name(kind));
    const LoraWeights plus = fx.step(kind, kLr, kRatio);
    const LoraWeights slow = fx.step(kind, kLr, 0.0), fast = fx.step(kind, kLr * kRatio, 0.0);
    double moved_a = 0, moved_b = 0;
    for (const auto& s : plus.slots) {
      for (int64_t i = 0; i < fx.start.cfg.r * s.in; ++i) {
        const size_t k = s.a + size_t(i);
        ASSERT_FLOAT_EQ(plus.params[k], slow.params[k]) << "A of layer " << s.layer << " " << proj_name(s.proj);
        moved_a = std::max(moved_a, std::abs(double(plus.params[k]) - fx.start.params[k]));
      }
      for (int64_t i = 0; i < s.out * fx.start.cfg.r; ++i) {
        const size_t k = s.b + size_t(i);
        ASSERT_FLOAT_EQ(plus.params[k], fast.params[k]) << "B of layer " << s.layer << " " << proj_name(s.proj);
        moved_b = std::max(moved_b, std::abs(double(plus.params[k] - slow.params[k])));
      }
    }
    EXPECT_GT(moved_a, 0.0) << "A did not move";
    EXPECT_GT(moved_b, 1e-6) << "B moved as with the plain lr: the ratio did nothing";
    // The moments do not depend on lr: each state buffer equals the plain step's.
    ASSERT_EQ(plus.state.size(), slow.state.size());
    for (size_t i = 0; i < plus.state.size(); ++i) {
      EXPECT_EQ(plus.state[i].codes, slow.state[i].codes) << plus.state[i].name;
      ASSERT_EQ(plus.state[i].f32.size(), slow.state[i].f32.size());
      for (size_t j = 0; j < plus.state[i].f32.size(); ++j)
        ASSERT_FLOAT_EQ(plus.state[i].f32[j], slow.state[i].f32[j]) << plus.state[i].name << "[" << j << "]";
    }
  }
}

TEST(LoraPlus, ResumeIsExactAndTheRatioIsATrainingParameter) {
  auto setup = [](const std::string& tag) {
    test::Fixture f = test::make_fixture("loraplus" + tag);
    f.p.loraplus_lr_ratio = 16;
    f.p.max_steps = 4;
    f.p.save_steps = 2;
    return f;
  };
  test::Fixture a = setup("_a"), b = setup("_b"), off = setup("_off");
  off.p.loraplus_lr_ratio = 0;
  RunControl c1, c2, c3, c4;
  test::Collected straight, first, second, plain;
  run_training(a.p, c1, test::collect(straight));
  run_training(off.p, c4, test::collect(plain));
  run_training(b.p, c2, test::collect(first, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step && e.record.step == 2) c2.request_stop();
  }));
  b.p.resume_from_checkpoint = "latest";
  run_training(b.p, c3, test::collect(second));
  ASSERT_EQ(straight.steps.size(), 4u);
  ASSERT_EQ(second.steps.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(second.steps[i].loss, straight.steps[i + 2].loss) << "step " << i + 3;
  EXPECT_NE(plain.steps[3].loss, straight.steps[3].loss) << "the ratio changed nothing";
  EXPECT_EQ(read_file(adapter_dir(a.p) / "adapter_model.safetensors"),
            read_file(adapter_dir(b.p) / "adapter_model.safetensors"));
  const auto params = nlohmann::json::parse(read_file(adapter_dir(a.p) / "training_parameters.json"));
  EXPECT_EQ(params.at("loraplus_lr_ratio"), 16.0);
  const auto config = nlohmann::json::parse(read_file(adapter_dir(a.p) / "adapter_config.json"));
  for (const auto& [key, value] : config.items()) EXPECT_THAT(key, ::testing::Not(HasSubstr("loraplus")));
  EXPECT_TRUE(config.contains("r"));
}
