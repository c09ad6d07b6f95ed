// Accumulated forward/backward, clipping and the optimizer update; see optimizer_step.h.
#include "train/optimizer_step.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace tpro {

namespace {

void update(const Backend& be, LoraState& lw, const OptimConfig& cfg, double lr, int64_t step) {
  float *p = lw.params(), *g = lw.grads();
  const int64_t n = lw.n_params();
  TPRO_CHECK(lw.n_state() > 0, "LoraState made from an image without optimizer state (hint: set_optimizer first)");
  switch (lw.optim()) {
    case OptimKind::adamw: {
      AdamWHyper h = cfg.adam;
      h.lr = lr;
      be.adamw(p, g, lw.state_f32(0), lw.state_f32(1), n, h, step);
      return;
    }
    case OptimKind::sgd: {
      SgdHyper h = cfg.sgd;
      h.lr = lr;
      be.sgd(p, g, lw.state_f32(0), n, h, step);
      return;
    }
    case OptimKind::adagrad: {
      AdagradHyper h = cfg.adagrad;
      h.lr = lr;
      be.adagrad(p, g, lw.state_f32(0), n, h, step);
      return;
    }
    case OptimKind::adafactor: {
      AdafactorHyper h = cfg.adafactor;
      h.lr = lr;
      be.adafactor(p, g, lw.state_f32(0), lw.state_f32(1), lw.tensors(), h, step);
      return;
    }
    case OptimKind::lion: {
      LionHyper h = cfg.lion;
      h.lr = lr;
      be.lion(p, g, lw.state_f32(0), n, h);
      return;
    }
    case OptimKind::adamw8bit: {
      AdamWHyper h = cfg.adam;
      h.lr = lr;
      be.adamw8bit(p, g, lw.state_u8(0), lw.state_u8(1), lw.state_f32(2), lw.state_f32(3), lw.tensors(), h, step);
      return;
    }
  }
}

}  // namespace

StepStats optimizer_step(const Model& m, LoraState& lw, Activations& a, std::span<const BatchView> micro,
                         double lr, int64_t step, uint64_t seed, const OptimConfig& cfg) {
  StepStats st;
  for (const auto& mb : micro) {
    st.n_trained += count_trained(mb);
    st.n_tokens += mb.B * mb.T;
  }
  const Backend& be = *a.be;
  be.fill(lw.grads(), 0.0f, lw.n_params());
  if (st.n_trained == 0) return st;  // nothing to learn from: no update (the trainer warns)
  double nll = 0.0;
  for (size_t i = 0; i < micro.size(); ++i) {
    const BatchView& mb = micro[i];
    reshape_activations(a, m.cfg, &lw.layout(), mb.B, mb.T);
    StepOptions opt;
    opt.loss_norm = double(st.n_trained);
    opt.train = true;
    opt.seed = splitmix64(seed ^ splitmix64(i + 1));
    opt.neftune_alpha = cfg.neftune_alpha;
    opt.cancel = cfg.cancel;
    nll += forward(m, &lw, a, mb, opt).nll_sum;
    backward(m, lw, a, mb, opt);
  }
  st.loss = nll / double(st.n_trained);
  const int64_t n = lw.n_params();
  st.grad_norm = be.l2_norm(lw.grads(), n);
  st.finite = std::isfinite(st.loss) && std::isfinite(st.grad_norm);
  if (!st.finite) return st;  // never let a NaN reach the weights or the moments
  if (cfg.max_grad_norm > 0.0 && st.grad_norm > cfg.max_grad_norm)  // as torch clip_grad_norm_
    be.scale(lw.grads(), n, float(cfg.max_grad_norm / (st.grad_norm + 1e-6)));
  update(be, lw, cfg, lr, step);
  return st;
}

double evaluate_loss(const Model& m, const LoraState* lw, Activations& a, std::span<const BatchView> batches,
                     int64_t* n_trained) {
  double nll = 0.0;
  int64_t n = 0;
  for (const auto& mb : batches) {
    reshape_activations(a, m.cfg, lw ? &lw->layout() : nullptr, mb.B, mb.T);
    StepOptions opt;
    opt.train = false;
    StepResult r = forward(m, lw, a, mb, opt);
    nll += r.nll_sum;
    n += r.n_trained;
  }
  if (n_trained) *n_trained = n;
  return n ? nll / double(n) : 0.0;
}

}  // namespace tpro
