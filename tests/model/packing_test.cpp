// Sample packing end to end: two documents packed in one row (positions restarting, attention
// kept inside each document through seg_start, the boundary target untrained) give the logits,
// the loss and the LoRA gradients of the two documents run on their own. Same f32 arithmetic
// in another blocking: 1e-5 relative.
#include <gtest/gtest.h>

#include <numeric>

#include "common/backend_util.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "kernels/cpu/gradcheck.h"
#include "model/lora.h"
#include "model_test_util.h"

using namespace tpro;
using namespace tpro::test;

namespace {

struct RowRun {
  std::vector<float> logits;  // (T, V)
  double nll = 0;
  std::vector<float> grads;
};

// One row through forward + backward; loss_norm fixed by the caller so that runs add up.
RowRun run_row(const Model& m, LoraWeights& lw, const std::vector<int32_t>& tokens, const std::vector<int32_t>* pos,
            const std::vector<int32_t>* seg, const std::vector<uint8_t>& mask, double loss_norm) {
  const int64_t T = int64_t(tokens.size());
  Activations a;
  make_activations(a, test::cpu(), m.cfg, &lw, 1, T);
  BatchView in{1, T, tokens.data(), pos ? pos->data() : nullptr, seg ? seg->data() : nullptr, mask.data()};
  StepOptions opt;
  opt.loss_norm = loss_norm;
  zero_grads(lw);
  LoraState st(test::cpu(), lw);
  RowRun r;
  r.nll = forward(m, &st, a, in, opt).nll_sum;
  r.logits.resize(size_t(T * m.cfg.vocab_size));
  compute_logits(m, a, r.logits.data());
  backward(m, st, a, in, opt);
  st.download(lw);
  r.grads = lw.grads;
  return r;
}

}  // namespace

TEST(Packing, TwoDocumentsInOneRowEqualTwoSeparateRuns) {
  const fs::path d = temp_dir("p");
  LlamaConfig c = small_config();
  write_random_model(d / "hf", c, 3, DType::F32, 0.3f);
  const Model m = load_model(d / "hf");
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets.fill(true);
  Rng rng(9);
  LoraWeights lw = make_lora(m.cfg, lc, rng);
  for (const auto& s : lw.slots)  // non-zero B, so dA is not identically zero
    for (int64_t i = 0; i < s.out * lc.r; ++i) lw.params[s.b + size_t(i)] = 0.01f * float((i * 7) % 13 - 6);

  const std::vector<int32_t> a = sample_tokens(c.vocab_size, 7), b = {11, 3, 60, 60, 2, 95, 40, 7, 1};
  const int64_t Ta = int64_t(a.size()), Tb = int64_t(b.size());
  std::vector<int32_t> packed = a, pos(size_t(Ta + Tb)), seg(size_t(Ta + Tb));
  packed.insert(packed.end(), b.begin(), b.end());
  std::iota(pos.begin(), pos.begin() + Ta, 0);
  std::iota(pos.begin() + Ta, pos.end(), 0);
  std::fill(seg.begin() + Ta, seg.end(), int32_t(Ta));
  std::vector<uint8_t> mask_a(size_t(Ta), 1), mask_b(size_t(Tb), 1), mask_p(size_t(Ta + Tb), 1);
  mask_p[size_t(Ta)] = 0;  // a's last token does not predict b's first
  const double n = double((Ta - 1) + (Tb - 1));

  const RowRun ra = run_row(m, lw, a, nullptr, nullptr, mask_a, n);
  const RowRun rb = run_row(m, lw, b, nullptr, nullptr, mask_b, n);
  const RowRun rp = run_row(m, lw, packed, &pos, &seg, mask_p, n);

  std::vector<double> want_logits(ra.logits.begin(), ra.logits.end());
  want_logits.insert(want_logits.end(), rb.logits.begin(), rb.logits.end());
  test::expect_close(rp.logits, want_logits, 1e-5, 1e-5, "packed logits");
  EXPECT_NEAR(rp.nll, ra.nll + rb.nll, 1e-5 * (ra.nll + rb.nll)) << "loss";
  std::vector<double> want_grads(ra.grads.size());
  for (size_t i = 0; i < want_grads.size(); ++i) want_grads[i] = double(ra.grads[i]) + double(rb.grads[i]);
  test::expect_close(rp.grads, want_grads, 1e-6, 1e-4, "LoRA gradients");

  // Without seg_start the second document sees the first: the logits must change.
  const RowRun leak = run_row(m, lw, packed, &pos, nullptr, mask_p, n);
  EXPECT_GT(max_abs_diff(std::vector<float>(leak.logits.begin() + Ta * c.vocab_size, leak.logits.end()),
                         std::vector<float>(rp.logits.begin() + Ta * c.vocab_size, rp.logits.end())),
            1e-3);
}
