// Fused masked cross-entropy; see cross_entropy.h.
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tpro {

double cross_entropy_fused(float* logits, const int32_t* targets, const float* weight, int64_t n, int64_t V,
                           float* nll, bool want_grad, float softcap) {
  double total = 0.0;
  const bool capped = softcap > 0.0f;
#pragma omp parallel for reduction(+ : total) if (worth_parallel(n * V))
  for (int64_t r = 0; r < n; ++r) {
    float* l = logits + r * V;
    const bool trained = targets[r] >= 0 && weight[r] != 0.0f;
    if (!trained) {
      if (nll) nll[r] = 0.0f;
      if (want_grad) std::fill(l, l + V, 0.0f);
      continue;
    }
    // Soft-capping: z = cap·tanh(l/cap); t keeps tanh for the gradient's (1 − t²).
    thread_local std::vector<float> tanh_row;
    if (capped) {
      tanh_row.resize(size_t(V));
      const float inv = 1.0f / softcap;
      for (int64_t j = 0; j < V; ++j) {
        tanh_row[size_t(j)] = std::tanh(l[j] * inv);
        l[j] = softcap * tanh_row[size_t(j)];
      }
    }
    const float mx = max_of(l, V);
    const float target_logit = l[targets[r]];
    const double sum = exp_shift_sum(l, l, V, -mx);  // l[j] = exp(l[j] − max)
    const double row_nll = double(mx) + std::log(sum) - double(target_logit);
    if (nll) nll[r] = float(row_nll);
    total += double(weight[r]) * row_nll;
    if (want_grad) {
      const float scale = float(double(weight[r]) / sum);
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) l[j] *= scale;
      l[targets[r]] -= weight[r];
      if (capped) {
        const float* t = tanh_row.data();
#pragma omp simd
        for (int64_t j = 0; j < V; ++j) l[j] *= 1.0f - t[j] * t[j];
      }
    }
  }
  return total;
}

}  // namespace tpro
