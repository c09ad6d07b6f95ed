// Global-norm gradient clipping in optimizer_step: above max_grad_norm the AdamW update is the
// one of the gradients scaled by max/(norm + 1e-6), as torch.nn.utils.clip_grad_norm_; at or
// below it, and with max_grad_norm 0, the gradients are used as they are.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/backend_util.h"
#include "common/tiny_config.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "train/optimizer_step.h"

using namespace tpro;

namespace {
LlamaConfig clip_config() {
  LlamaConfig c = test::tiny_config(32, 64, 64);
  c.max_position = 64;
  return c;
}

struct ClipFixture {
  Model m;
  LoraWeights start;  // B non-zero (so A has gradients too) and AdamW moments part-way through
  std::vector<int32_t> toks;
  Activations a;
  BatchView mb;
  static constexpr int64_t kB = 2, kT = 10, kStep = 4;

  ClipFixture() {
    // One folder per test: ctest may run the tests of this file in parallel.
    const fs::path d = fs::temp_directory_path() /
                       (std::string("tpro_clipping_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(d);
    write_random_model(d, clip_config(), 9, DType::F32, 0.2f);
    m = load_model(d);
    LoraConfig lc;
    lc.r = 4;
    lc.alpha = 8;
    lc.targets.fill(true);
    Rng rng(2);
    start = make_lora(m.cfg, lc, rng);
    // AdamW's state is state[0] = exp_avg, state[1] = exp_avg_sq (optimizer_buffers).
    // Primed moments make the update depend on the gradient's scale; at step 1 with zero
    // moments AdamW's update is ≈ lr·sign(g) and would hide whether clipping happened.
    for (const auto& s : start.slots)
      for (size_t i = s.b; i < s.b + size_t(s.out * lc.r); ++i) start.params[i] = 0.05f * std::sin(float(i));
    for (size_t i = 0; i < start.params.size(); ++i) {
      start.state[0].f32[i] = 1e-3f * std::cos(float(i));
      start.state[1].f32[i] = 1e-5f * (1.5f + std::sin(0.7f * float(i)));
    }
    for (int64_t i = 0; i < kB * kT; ++i) toks.push_back(int32_t((i * 29 + 3) % 64));
    make_activations(a, test::cpu(), m.cfg, &start, kB, kT);
    mb = BatchView{kB, kT, toks.data(), nullptr, nullptr, nullptr};
  }

  StepStats step(LoraWeights& lw, double max_grad_norm) {
    OptimConfig oc;
    oc.max_grad_norm = max_grad_norm;
    oc.adam.weight_decay = 0.01;
    LoraState st(test::cpu(), lw);
    const StepStats s = optimizer_step(m, st, a, {&mb, 1}, 1e-2, kStep, 77, oc);
    st.download(lw);
    return s;
  }
};

double max_abs_diff(const std::vector<float>& x, const std::vector<float>& y) {
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(double(x[i]) - double(y[i])));
  return d;
}
}  // namespace

TEST(Clipping, UpdateEqualsTheStepWithPrescaledGradients) {
  ClipFixture fx;
  LoraWeights raw = fx.start;
  const StepStats s0 = fx.step(raw, 0.0);  // no clipping: raw.grads are the gradients
  const double norm = s0.grad_norm;
  ASSERT_GT(norm, 0.0);
  EXPECT_NEAR(norm, test::cpu().l2_norm(raw.grads.data(), raw.n_params()), 1e-9 * norm);

  const double max_norm = norm / 5.0;
  LoraWeights clipped = fx.start;
  const StepStats s1 = fx.step(clipped, max_norm);
  EXPECT_NEAR(s1.grad_norm, norm, 1e-6 * norm);  // reported before clipping
  EXPECT_EQ(s1.loss, s0.loss);
  EXPECT_NEAR(test::cpu().l2_norm(clipped.grads.data(), clipped.n_params()), max_norm, 1e-5 * max_norm);

  // The manual step: AdamW from the same state on g · max/(norm + 1e-6).
  LoraWeights manual = fx.start;
  std::vector<float> g = raw.grads;
  test::cpu().scale(g.data(), int64_t(g.size()), float(max_norm / (norm + 1e-6)));
  AdamWHyper h;
  h.lr = 1e-2;
  h.weight_decay = 0.01;
  test::cpu().adamw(manual.params.data(), g.data(), manual.state[0].f32.data(), manual.state[1].f32.data(), manual.n_params(), h,
               ClipFixture::kStep);
  // Same kernel, same gradients (bit-equal here; the slack allows another summation order).
  EXPECT_LT(max_abs_diff(clipped.params, manual.params), 1e-6);
  EXPECT_LT(max_abs_diff(clipped.state[0].f32, manual.state[0].f32), 1e-9);
  EXPECT_LT(max_abs_diff(clipped.state[1].f32, manual.state[1].f32), 1e-12);
  // And clipping changed the update by far more than that tolerance.
  EXPECT_GT(max_abs_diff(clipped.params, raw.params), 1e-3);  // 3.4e-3 here
}

TEST(Clipping, NormBelowTheLimitLeavesGradientsAlone) {
  ClipFixture fx;
  LoraWeights raw = fx.start, loose = fx.start;
  const double norm = fx.step(raw, 0.0).grad_norm;
  fx.step(loose, 2.0 * norm);
  EXPECT_EQ(loose.grads, raw.grads);
  EXPECT_EQ(loose.params, raw.params);
}

// A NaN anywhere in the step (here one LoRA weight) is reported and makes no update: the
// weights and AdamW moments stay as they were, so nothing non-finite reaches a saved file.
TEST(NonFinite, StepReportsItAndLeavesWeightsAndMomentsAlone) {
  ClipFixture fx;
  LoraWeights lw = fx.start;
  lw.params[lw.slots[0].b] = std::nanf("");
  const LoraWeights before = lw;
  const StepStats s = fx.step(lw, 1.0);
  EXPECT_FALSE(s.finite);
  EXPECT_TRUE(std::isnan(s.loss) || std::isnan(s.grad_norm));
  EXPECT_EQ(std::memcmp(lw.params.data(), before.params.data(), lw.params.size() * sizeof(float)), 0);
  EXPECT_EQ(lw.state[0].f32, before.state[0].f32);
  EXPECT_EQ(lw.state[1].f32, before.state[1].f32);
  LoraWeights good = fx.start;
  EXPECT_TRUE(fx.step(good, 1.0).finite);
}

// A stop request abandons the step between layers, before any update.
TEST(Cancel, StopDuringAStepMakesNoUpdate) {
  ClipFixture fx;
  LoraWeights lw = fx.start;
  CancelFlag stop{true};
  OptimConfig oc;
  oc.cancel = &stop;
  LoraState st(test::cpu(), lw);
  EXPECT_THROW(optimizer_step(fx.m, st, fx.a, {&fx.mb, 1}, 1e-2, ClipFixture::kStep, 77, oc), Cancelled);
  st.download(lw);
  EXPECT_EQ(lw.params, fx.start.params);
  EXPECT_EQ(lw.state[0].f32, fx.start.state[0].f32);
}
