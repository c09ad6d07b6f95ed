// Accumulated forward/backward, clipping and the optimizer update; see optimizer_step.h.
#include "train/optimizer_step.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace tpro {

namespace {

// One optimizer update of the elements [off, off + n) of the flat buffers (every state buffer
// of an elementwise optimizer is parallel to params), or of `tensors` for the per-tensor ones.
void update_range(const Backend& be, LoraState& lw, const OptimConfig& cfg, double lr, int64_t step, int64_t off,
                  int64_t n, std::span<const OptimTensor> tensors) {
  float *p = lw.params() + off, *g = lw.grads() + off;
  switch (lw.optim()) {
    case OptimKind::adamw: {
      AdamWHyper h = cfg.adam;
      h.lr = lr;
      be.adamw(p, g, lw.state_f32(0) + off, lw.state_f32(1) + off, n, h, step);
      return;
    }
    case OptimKind::sgd: {
      SgdHyper h = cfg.sgd;
      h.lr = lr;
      be.sgd(p, g, lw.state_f32(0) + off, n, h, step);
      return;
    }
    case OptimKind::adagrad: {
      AdagradHyper h = cfg.adagrad;
      h.lr = lr;
      be.adagrad(p, g, lw.state_f32(0) + off, n, h, step);
      return;
    }
    case OptimKind::adafactor: {  // per tensor: the offsets are in the tensors
      AdafactorHyper h = cfg.adafactor;
      h.lr = lr;
      be.adafactor(lw.params(), lw.grads(), lw.state_f32(0), lw.state_f32(1), tensors, h, step);
      return;
    }
    case OptimKind::lion: {
      LionHyper h = cfg.lion;
      h.lr = lr;
      be.lion(p, g, lw.state_f32(0) + off, n, h);
      return;
    }
    case OptimKind::adamw8bit: {  // per tensor: blocks never straddle two tensors
      AdamWHyper h = cfg.adam;
      h.lr = lr;
      be.adamw8bit(lw.params(), lw.grads(), lw.state_u8(0), lw.state_u8(1), lw.state_f32(2), lw.state_f32(3), tensors,
                   h, step);
      return;
    }
  }
}

bool per_tensor(OptimKind k) { return k == OptimKind::adafactor || k == OptimKind::adamw8bit; }

void update(const Backend& be, LoraState& lw, const OptimConfig& cfg, double lr, int64_t step) {
  TPRO_CHECK(lw.n_state() > 0, "LoraState made from an image without optimizer state (hint: set_optimizer first)");
  const double ratio = cfg.loraplus_lr_ratio;
  if (ratio <= 0.0) {
    update_range(be, lw, cfg, lr, step, 0, lw.n_params(), lw.tensors());
    return;
  }
  // LoRA+ (Hayou et al. 2024; PEFT's create_loraplus_optimizer, LLaMA-Factory): B matrices and
  // 1-D parameters learn at lr·ratio, A matrices at lr. A and B alternate in the flat layout,
  // so elementwise optimizers run over each run of same-group tensors, per-tensor ones over
  // each group's tensor list.
  const std::span<const OptimTensor> all = lw.tensors();
  if (per_tensor(lw.optim())) {
    std::vector<OptimTensor> group[2];
    for (const OptimTensor& t : all) group[t.lr_group_b].push_back(t);
    for (int b = 0; b < 2; ++b)
      if (!group[b].empty()) update_range(be, lw, cfg, b ? lr * ratio : lr, step, 0, 0, group[b]);
    return;
  }
  for (size_t i = 0; i < all.size();) {
    size_t j = i + 1;
    int64_t end = all[i].offset + all[i].numel();
    while (j < all.size() && all[j].lr_group_b == all[i].lr_group_b && all[j].offset == end)
      end += all[j].numel(), ++j;
    update_range(be, lw, cfg, all[i].lr_group_b ? lr * ratio : lr, step, all[i].offset, end - all[i].offset, {});
    i = j;
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
  lw.params_changed();
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
