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
  const float b1 = float(h.beta1), b2 = float(h.beta2), eps = float(h.eps), inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    params[i] *= decay;
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    params[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
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
