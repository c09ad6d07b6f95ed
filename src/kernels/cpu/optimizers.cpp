// SGD, Adagrad, Adafactor and Lion; see optimizers.h. Each follows its reference's order of
// operations in f32 (torch's single-tensor loops, transformers' Adafactor.step), with means and
// RMS summed in double.
#include "kernels/cpu/optimizers.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/parallel.h"

namespace tpro {

void sgd_update(float* params, const float* grads, float* buf, int64_t n, const SgdHyper& h, int64_t step) {
  const float wd = float(h.weight_decay), mom = float(h.momentum), damp = float(1.0 - h.dampening),
              neg_lr = float(-h.lr);
  const bool first = step <= 1, use_mom = h.momentum != 0.0;
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    float d = grads[i];
    if (wd != 0.0f) d = d + wd * params[i];
    if (use_mom) {
      buf[i] = first ? d : mom * buf[i] + damp * d;
      d = h.nesterov ? d + mom * buf[i] : buf[i];
    }
    params[i] = params[i] + neg_lr * d;
  }
}

void adagrad_update(float* params, const float* grads, float* sum, int64_t n, const AdagradHyper& h, int64_t step) {
  const float wd = float(h.weight_decay), eps = float(h.eps);
  const float neg_clr = float(-(h.lr / (1.0 + double(step - 1) * h.lr_decay)));
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    float d = grads[i];
    if (wd != 0.0f) d = d + wd * params[i];
    sum[i] = sum[i] + d * d;
    params[i] = params[i] + neg_clr * (d / (std::sqrt(sum[i]) + eps));
  }
}

namespace {

// One tensor of Adafactor. The update u is formed twice (its RMS first, then applied) rather
// than kept: LoRA tensors are small and this needs no scratch memory.
void adafactor_tensor(float* p, const float* g, float* row, float* col, const OptimTensor& t,
                      const AdafactorHyper& h, double beta2t) {
  const int64_t R = t.rows, C = t.cols, n = t.numel();
  const float b = float(beta2t), a = float(1.0 - beta2t), eps1 = float(h.eps1);
  double rmean = 0.0;
  if (t.matrix) {
    for (int64_t r = 0; r < R; ++r) {  // row factor: mean over the columns of g² + eps1
      double s = 0.0;
      for (int64_t c = 0; c < C; ++c) s += double(g[r * C + c] * g[r * C + c] + eps1);
      row[r] = b * row[r] + a * float(s / double(C));
      rmean += double(row[r]);
    }
    rmean /= double(R);
    for (int64_t c = 0; c < C; ++c) {  // column factor: mean over the rows
      double s = 0.0;
      for (int64_t r = 0; r < R; ++r) s += double(g[r * C + c] * g[r * C + c] + eps1);
      col[c] = b * col[c] + a * float(s / double(R));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) row[i] = b * row[i] + a * (g[i] * g[i] + eps1);
  }
  // u = g / sqrt(v̂), v̂ = row·col / mean(row) for a matrix (transformers' _approx_sq_grad).
  auto update = [&](int64_t i) {
    if (!t.matrix) return g[i] / std::sqrt(row[i]);
    const int64_t r = i / C, c = i % C;
    const float rf = float(1.0 / std::sqrt(double(row[r]) / rmean)), cf = 1.0f / std::sqrt(col[c]);
    return rf * cf * g[i];
  };
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double u = update(i);
    ss += u * u;
  }
  const double rms = std::sqrt(ss / double(n));
  const float denom = float(std::max(rms / h.clip_threshold, 1.0)), lr = float(h.lr);
  const float decay = float(-h.weight_decay * h.lr);
  for (int64_t i = 0; i < n; ++i) {
    const float u = update(i) / denom * lr;
    if (h.weight_decay != 0.0) p[i] = p[i] + p[i] * decay;
    p[i] = p[i] - u;
  }
}

}  // namespace

void adafactor_update(float* params, const float* grads, float* row, float* col, std::span<const OptimTensor> tensors,
                      const AdafactorHyper& h, int64_t step) {
  const double beta2t = 1.0 - std::pow(double(step), h.decay_rate);
  const int64_t nt = int64_t(tensors.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < nt; ++k) {
    const OptimTensor& t = tensors[size_t(k)];
    adafactor_tensor(params + t.offset, grads + t.offset, row + t.row_at, col + t.col_at, t, h, beta2t);
  }
}

void lion_update(float* params, const float* grads, float* m, int64_t n, const LionHyper& h) {
  const float decay = float(1.0 - h.lr * h.weight_decay), lr = float(h.lr);
  const float b1 = float(h.beta1), b2 = float(h.beta2), a1 = float(1.0 - h.beta1), a2 = float(1.0 - h.beta2);
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i], c = b1 * m[i] + a1 * g;
    const float sign = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);  // torch.sign: 0 stays 0
    params[i] = params[i] * decay - lr * sign;
    m[i] = b2 * m[i] + a2 * g;
  }
}

}  // namespace tpro
