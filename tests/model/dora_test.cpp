// DoRA in the model: magnitudes start at the row norms of the base as held (a q8_0-quantized
// base dequantized, as PEFT's dequantize_module_weight), a merged DoRA adapter computes what
// base + adapter compute, and the cached weight norms follow the parameters (a new upload is
// seen; a forward that reuses the norms gives what a fresh state gives).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/backend_util.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "formats/peft_adapter.h"
#include "model/base_weights.h"
#include "model/merge.h"
#include "model_test_util.h"
#include "quant/quantized_matrix.h"

using namespace tpro;
using namespace tpro::test;

namespace {
LoraConfig dora_config() {
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dora = true;
  lc.targets.fill(true);
  return lc;
}
}  // namespace

TEST(Dora, MagnitudesStartAtTheRowNormsOfTheHeldBase) {
  const fs::path d = temp_dir("init");
  write_random_model(d, small_config(), 4, DType::F32, 0.3f);
  Model m = load_model(d);
  BaseWeightOptions o;
  o.quantize = "q8_0";
  o.compute = "f32";
  apply_base_options(m, o, cpu());
  Rng rng(2);
  LoraWeights lw = make_lora(m.cfg, dora_config(), rng);
  for (const auto& s : lw.slots) EXPECT_EQ(lw.params[s.m], 0.0f);
  init_dora_magnitudes(cpu(), m, lw);
  for (const auto& s : lw.slots) {
    const WeightMatrix& W = proj_weight(m.layers[size_t(s.layer)], s.proj);
    ASSERT_EQ(W.type, WType::Q8_0);
    std::vector<float> w(size_t(W.rows * W.cols));
    dequantize_rows(W, 0, W.rows, w.data());
    for (int64_t o2 = 0; o2 < s.out; ++o2) {
      double ss = 0;
      for (int64_t i = 0; i < s.in; ++i) ss += double(w[size_t(o2 * s.in + i)]) * w[size_t(o2 * s.in + i)];
      ASSERT_NEAR(lw.params[s.m + size_t(o2)], std::sqrt(ss), 1e-5 * std::sqrt(ss))
          << proj_name(s.proj) << " layer " << s.layer << " row " << o2;
    }
  }
  // B = 0 and m = ‖W‖: the adapter starts as the identity, as PEFT's.
  const auto toks = sample_tokens(m.cfg.vocab_size);
  const auto base = logits_of(m, nullptr, toks), adapted = logits_of(m, &lw, toks);
  EXPECT_LT(max_abs_diff(base, adapted), 1e-4);
}

TEST(Dora, MergedModelComputesBasePlusAdapter) {
  const fs::path dir = fs::path(TPRO_FIXTURES) / "golden" / "qwen2_dora";
  const Model m = load_model(dir);
  const LoraWeights lw = load_adapter(dir, m);
  ASSERT_TRUE(lw.cfg.dora);
  const auto toks = sample_tokens(m.cfg.vocab_size, 10);
  const auto want = logits_of(m, &lw, toks);
  const Model merged = merge_lora(cpu(), m, lw, WType::F32);
  EXPECT_LT(max_abs_diff(logits_of(merged, nullptr, toks), want), 1e-4);
  // Merging as plain LoRA (without the magnitudes' rescaling) is measurably different.
  LoraWeights plain = lw;
  plain.cfg.dora = false;
  EXPECT_GT(max_abs_diff(logits_of(merge_lora(cpu(), m, plain, WType::F32), nullptr, toks), want), 1e-2);
}

TEST(Dora, CachedNormsFollowTheParameters) {
  const fs::path dir = fs::path(TPRO_FIXTURES) / "golden" / "qwen2_dora";
  const Model m = load_model(dir);
  LoraWeights lw = load_adapter(dir, m);
  const auto toks = sample_tokens(m.cfg.vocab_size, 10);
  const int64_t T = int64_t(toks.size());
  Activations a;
  make_activations(a, cpu(), m.cfg, &lw, 1, T);
  const BatchView in{1, T, toks.data(), nullptr, nullptr, nullptr};
  StepOptions opt;
  opt.train = false;
  LoraState st(cpu(), lw);
  auto run = [&] {
    forward(m, &st, a, in, opt);
    std::vector<float> out(size_t(T * m.cfg.vocab_size));
    compute_logits(m, a, out.data());
    return out;
  };
  const auto first = run();
  EXPECT_EQ(run(), first) << "a second forward with the cached norms";
  for (const auto& s : lw.slots)  // change B: the norms change with it
    for (int64_t i = 0; i < s.out * lw.cfg.r; ++i) lw.params[s.b + size_t(i)] *= -1.5f;
  st.upload(lw);
  const auto second = run();
  EXPECT_GT(max_abs_diff(second, first), 1e-3);
  EXPECT_LT(max_abs_diff(second, logits_of(m, &lw, toks)), 1e-5) << "stale norms after upload";
}
