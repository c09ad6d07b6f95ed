// NEFTune: uniform noise in ±α/√(T·D) on the input embeddings, in training forwards only,
// reproducible from the step seed.
#include <gtest/gtest.h>

#include <cmath>

#include "common/backend_util.h"
#include "formats/load.h"
#include "model/step.h"

using namespace tpro;

TEST(NEFTune, UniformNoiseOfTheRightSizeOnlyWhenTraining) {
  Model m = load_model(fs::path(TPRO_FIXTURES) / "golden" / "llama_gqa_tied");
  const int64_t B = 2, T = 50, D = m.cfg.n_embd;
  std::vector<int32_t> toks(size_t(B * T));
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t(i * 13 % 97);
  Activations a;
  make_activations(a, test::cpu(), m.cfg, nullptr, B, T);
  BatchView in{B, T, toks.data(), nullptr, nullptr, nullptr};
  auto embeddings = [&](bool train, double alpha, uint64_t seed) {
    StepOptions opt;
    opt.train = train;
    opt.neftune_alpha = alpha;
    opt.seed = seed;
    forward(m, nullptr, a, in, opt);
    return std::vector<float>(a.layers[0].x_in, a.layers[0].x_in + B * T * D);
  };
  const auto clean = embeddings(true, 0.0, 1);
  const auto noisy = embeddings(true, 5.0, 1);
  const double mag = 5.0 / std::sqrt(double(T * D));
  double max_abs = 0, sum = 0, sum_abs = 0;
  for (size_t i = 0; i < clean.size(); ++i) {
    const double d = double(noisy[i]) - double(clean[i]);
    max_abs = std::max(max_abs, std::fabs(d));
    sum += d;
    sum_abs += std::fabs(d);
  }
  const double n = double(clean.size());
  EXPECT_LE(max_abs, mag * (1 + 1e-5));
  EXPECT_GT(max_abs, 0.95 * mag);          // the whole interval is used
  EXPECT_NEAR(sum / n, 0.0, 0.05 * mag);   // centred
  EXPECT_NEAR(sum_abs / n, mag / 2, 0.05 * mag);  // uniform: E|u| = mag/2
  EXPECT_EQ(embeddings(true, 5.0, 1), noisy);     // same seed, same noise (exact resume)
  EXPECT_NE(embeddings(true, 5.0, 2), noisy);
  EXPECT_EQ(embeddings(false, 5.0, 1), clean);    // evaluation and generation see no noise
}
