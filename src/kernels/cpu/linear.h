// Frozen projections: out = inp·Wᵀ + bias and its input gradient dinp += dout·W (never dW).
// W may be any WType: F32 goes straight to SGEMM; other types are expanded panel by panel
// (kPanelRows rows at a time) into per-thread f32 scratch, then SGEMM, so a bf16 or quantized
// base is never materialised whole in f32. Reference: ref::linear_forward/backward.
#pragma once
#include <cstdint>

#include "quant/qmatrix.h"

namespace tpro {

// out (N,O) = inp (N,I)·Wᵀ (+ bias (O)); accumulate adds into out instead of overwriting.
void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias, int64_t N,
                    bool accumulate = false);
// dinp (N,I) += dout (N,O)·W, or = when accumulate is false.
void linear_backward(float* dinp, const float* dout, const WeightMatrix& W, int64_t N, bool accumulate = true);

// Rows [row0, row0+n) of W as f32 into dst (n, cols). Plain types converted here, block
// quants through quant/'s dequantize_rows.
void weight_rows_f32(const WeightMatrix& W, int64_t row0, int64_t n, float* dst);

// Plain row-major SGEMM helpers (row-major C (M,N) = alpha·op(A)·op(B) + beta·C).
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace tpro
