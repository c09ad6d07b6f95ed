// DoRA on a frozen projection (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation",
// as PEFT's DoraLinearLayer / DoraLinearVariant compute it): the adapted projection's output
// scaled per column by g = m / ‖W + s·B·A‖_row, the norm detached from the gradient. The maths
// is LoraOperands' (kernels/backend.h); the reference is ref::dora_forward/backward.
// Not stored: the base product the magnitude's gradient needs is recomputed in backward (one
// more x·Wᵀ per adapted projection), and with dropout the forward runs the base on both the
// input and its dropped copy (two products), as PEFT does.
#pragma once
#include <cstdint>

#include "kernels/backend.h"
#include "quant/qmatrix.h"

namespace tpro {

// wn (O) = ‖W + s·B·A‖ per row; W of any type, expanded in panels of rows to f32, sums in double.
void dora_weight_norm(float* wn, const WeightMatrix& W, const float* A, const float* B, float s, int64_t R);
// out (N,O) =; writes lo.u, and lo.wnorm first when lo.wnorm_stale. x16: x rounded to bf16
// (W.bf16_compute), or null.
void dora_forward(float* out, const float* x, const WeightMatrix& W, const float* bias, const LoraOperands& lo,
                  int64_t N, const uint16_t* x16);
// dx (N,I) = or += (accumulate); lo.dA, lo.dB, lo.dmag +=. dy16, x16: bf16 copies (W.bf16_compute) or null.
void dora_backward(float* dx, const float* dy, const float* x, const WeightMatrix& W, const LoraOperands& lo,
                   int64_t N, bool accumulate, const uint16_t* dy16, const uint16_t* x16);

// The scratch of dora_forward/backward for N rows, widths up to W, on `threads` threads.
size_t dora_scratch_bytes(int64_t N, int64_t W, bool bf16, bool dropout, int threads);

}  // namespace tpro
