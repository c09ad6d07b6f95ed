// The optimizers besides AdamW on the flat LoRA buffers, one function each with the maths in
// backend.h: SGD and Adagrad as torch.optim, Adafactor as transformers.optimization.Adafactor,
// Lion as the paper, and bitsandbytes' blockwise 8-bit AdamW (adamw8bit.cpp). All state is
// f32 except the 8-bit codes. Compiled without FMA contraction (the references round every
// product; the 8-bit codes must come out identical to tests/train/gen_optim_golden.py's).
#pragma once
#include <cstdint>
#include <span>

#include "kernels/backend.h"

namespace tpro {

void sgd_update(float* params, const float* grads, float* buf, int64_t n, const SgdHyper& h, int64_t step);
void adagrad_update(float* params, const float* grads, float* sum, int64_t n, const AdagradHyper& h, int64_t step);
void adafactor_update(float* params, const float* grads, float* row, float* col, std::span<const OptimTensor> tensors,
                      const AdafactorHyper& h, int64_t step);
void lion_update(float* params, const float* grads, float* m, int64_t n, const LionHyper& h);
void adamw8bit_update(float* params, const float* grads, uint8_t* q1, uint8_t* q2, float* absmax1, float* absmax2,
                      std::span<const OptimTensor> tensors, const AdamWHyper& h, int64_t step);

}  // namespace tpro
