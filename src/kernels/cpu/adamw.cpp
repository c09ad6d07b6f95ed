// AdamW update and gradient norm; see adamw.h.
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/parallel.h"

#include <cmath>

namespace tpro {

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const AdamWHyper& h,
                  int64_t step) {
  const double bc1 = 1.0 - std::pow(h.beta1, double(step));
  const double bc2 = 1.0 - std::pow(h.beta2, double(step));
  const float step_size = float(h.lr / bc1), decay = float(1.0 - h.lr * h.weight_decay);
  // 1 - beta in double, then f32, as torch passes it (1.0f - float(0.999) is 1.3e-5 off 0.001);
  // the update in torch's order (exp_avg_sq.sqrt() / sqrt(bc2) + eps, then addcdiv), so the
  // f32 results match torch.optim.AdamW to an ulp or two (tests/kernels/adamw_golden_test.cpp).
  const float b1 = float(h.beta1), b2 = float(h.beta2), eps = float(h.eps), sqrt_bc2 = float(std::sqrt(bc2));
  const float one_minus_b1 = float(1.0 - h.beta1), one_minus_b2 = float(1.0 - h.beta2);
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    params[i] *= decay;
    m[i] = b1 * m[i] + one_minus_b1 * g;
    v[i] = b2 * v[i] + one_minus_b2 * (g * g);
    params[i] += -step_size * (m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps));
  }
}

double grad_l2_norm(const float* grads, int64_t n) {
  double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) s += double(grads[i]) * double(grads[i]);
  return std::sqrt(s);
}

void scale_in_place(float* x, int64_t n, float s) {
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace tpro
