// train/perplexity's window bookkeeping, token by token: for several (stride, max_length)
// pairs, the sliding-window result equals a brute-force sum in which every token is scored
// by its own forward pass over exactly the context the recipe gives it (the window that
// first reaches past it, starting at a multiple of the stride).
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/backend_util.h"
#include "common/tiny_config.h"
#include "core/rng.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "model/step.h"
#include "train/perplexity.h"

using namespace tpro;

namespace {

Model tiny_model() {
  LlamaConfig c = test::tiny_config(32, 64, 64);
  c.max_position = 64;
  c.tie_word_embeddings = false;
  const fs::path d = fs::temp_directory_path() / ("tpro_ppl_windows_" + std::to_string(getpid()));
  write_random_model(d, c, 11, DType::F32, 0.2f);
  Model m = load_model(d);
  fs::remove_all(d);
  return m;
}

// −log p(ids[i] | ids[b..i-1]): one forward over ids[b..i] scoring only its last token.
double token_nll(const Model& m, const std::vector<int32_t>& ids, int64_t b, int64_t i) {
  const int64_t T = i - b + 1;
  Activations a;
  make_activations(a, test::cpu(), m.cfg, nullptr, 1, T);
  std::vector<uint8_t> mask(static_cast<size_t>(T), 0);
  mask[size_t(T - 1)] = 1;
  BatchView in{1, T, ids.data() + b, nullptr, nullptr, mask.data()};
  StepOptions opt;
  opt.train = false;
  return forward(m, nullptr, a, in, opt).nll_sum;
}

}  // namespace

TEST(PerplexityWindows, EqualsPerTokenReference) {
  const Model m = tiny_model();
  std::vector<int32_t> ids(41);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(splitmix64(5 + i) % 64);
  const int64_t n = int64_t(ids.size());
  for (auto [stride, L] : {std::pair<int64_t, int64_t>{5, 16}, {1, 8}, {16, 16}, {7, 40}, {3, 64}}) {
    double sum = 0;
    int64_t scored = 0;
    for (int64_t i = 1; i < n; ++i) {
      int64_t k = 0;
      while (std::min(k * stride + L, n) <= i) ++k;  // the first window that reaches past token i
      if (k * stride == i) continue;                  // a window's first token has no context
      sum += token_nll(m, ids, k * stride, i);
      ++scored;
    }
    const PerplexityResult r = evaluate_perplexity(test::cpu(), m, nullptr, ids, stride, L);
    EXPECT_EQ(r.n_scored, scored) << "stride " << stride << ", max_length " << L;
    EXPECT_NEAR(r.nll_sum, sum, 1e-5 * sum) << "stride " << stride << ", max_length " << L;
  }
}
