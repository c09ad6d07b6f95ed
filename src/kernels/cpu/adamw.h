// AdamW on the flat LoRA parameter buffer, as torch.optim.AdamW (decoupled weight decay,
// bias correction, eps added to the corrected sqrt(v)); and the global gradient L2 norm used
// for clipping. Moments are f32. Reference: Loshchilov & Hutter (2019); torch/optim/adamw.py.
#pragma once
#include <cstdint>

#include "kernels/backend.h"  // AdamWHyper

namespace tpro {

// One update at optimizer step `step` (1-based). params, grads, m, v all (n).
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const AdamWHyper& h,
                  int64_t step);
double grad_l2_norm(const float* grads, int64_t n);
void scale_in_place(float* x, int64_t n, float s);

}  // namespace tpro
