// bitsandbytes' blockwise 8-bit AdamW (kOptimizerStatic8bit2StateBlockwise, block 256): per
// block, dequantize m (signed dynamic map) and v (unsigned map) with their absmax, update them in
// f32, take the new absmax over the block, step the parameters from the unquantized moments,
// then requantize. The block's absmax also sees the padding lanes of a short last block, which
// bitsandbytes loads as g = 0, m code 128, v code 0. Where the CUDA kernel uses __powf and
// __fdividef, this uses pow in double rounded to f32 and IEEE division, which the golden
// reference (tests/train/gen_optim_golden.py) mirrors; see docs/OPTIMIZERS.md.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels/cpu/optimizers.h"
#include "quant/dynamic_map.h"

namespace tpro {

namespace {

struct Adam8Consts {
  float b1, b2, a1, a2, eps, lr, wd, corr2, step_size;
};

void adamw8bit_block(float* p, const float* g, uint8_t* q1, uint8_t* q2, float* absmax1, float* absmax2,
                     int64_t len, const Adam8Consts& k) {
  const auto& map1 = dynamic_map(true);
  const auto& map2 = dynamic_map(false);
  float s1[kOptim8bitBlock], s2[kOptim8bitBlock];
  float max1 = -FLT_MAX, max2 = -FLT_MAX;
  for (int64_t j = 0; j < kOptim8bitBlock; ++j) {
    const bool lane = j < len;
    const float gj = lane ? g[j] : 0.0f;
    if (std::isfinite(gj)) {
      s2[j] = map2[lane ? q2[j] : 0] * *absmax2;
      s2[j] = s2[j] * k.b2 + k.a2 * gj * gj;
      s1[j] = map1[lane ? q1[j] : 128] * *absmax1;
      s1[j] = s1[j] * k.b1 + k.a1 * gj;
    } else {
      s1[j] = 0.0f, s2[j] = 0.0f;
    }
    max1 = std::fmax(max1, std::fabs(s1[j]));
    max2 = std::fmax(max2, std::fabs(s2[j]));
  }
  *absmax1 = max1, *absmax2 = max2;
  for (int64_t j = 0; j < len; ++j) {
    if (std::isfinite(g[j])) {
      p[j] = p[j] + k.step_size * (s1[j] / (std::sqrt(s2[j]) + k.corr2 * k.eps));
      if (k.wd > 0.0f) p[j] = p[j] * (1.0f - k.lr * k.wd);
    }
    // An all-zero block divides 0 by 0: NaN quantizes to code 0, as on the GPU.
    uint8_t c1 = quantize_dynamic(map1, s1[j] / max1, true);
    if (std::signbit(map1[c1]) != std::signbit(s1[j])) c1 = uint8_t(s1[j] > 0.0f ? c1 + 1 : c1 - 1);
    q1[j] = c1;
    q2[j] = quantize_dynamic(map2, s2[j] / max2, false);
  }
}

}  // namespace

void adamw8bit_update(float* params, const float* grads, uint8_t* q1, uint8_t* q2, float* absmax1, float* absmax2,
                      std::span<const OptimTensor> tensors, const AdamWHyper& h, int64_t step) {
  // Hyper-parameters reach the kernel as f32 (ctypes c_float), and 1 − β is taken in f32.
  Adam8Consts k;
  k.b1 = float(h.beta1), k.b2 = float(h.beta2), k.eps = float(h.eps), k.lr = float(h.lr);
  k.wd = float(h.weight_decay), k.a1 = 1.0f - k.b1, k.a2 = 1.0f - k.b2;
  const float corr1 = float(1.0 - std::pow(double(k.b1), double(step)));
  k.corr2 = std::sqrt(float(1.0 - std::pow(double(k.b2), double(step))));
  k.step_size = (-k.lr * k.corr2) / corr1;
  const int64_t nt = int64_t(tensors.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < nt; ++t) {
    const OptimTensor& ot = tensors[size_t(t)];
    const int64_t n = ot.numel();
    for (int64_t b = 0; b < ot.blocks(); ++b) {
      const int64_t at = ot.offset + b * kOptim8bitBlock;
      adamw8bit_block(params + at, grads + at, q1 + at, q2 + at, absmax1 + ot.block_at + b,
                      absmax2 + ot.block_at + b, std::min(kOptim8bitBlock, n - b * kOptim8bitBlock), k);
    }
  }
}

}  // namespace tpro
