// Frozen projections: out = inp·Wᵀ + bias and its input gradient dinp += dout·W (never dW).
// f32 compute: an F32 W goes straight to SGEMM; other types are expanded panel by panel
// (kPanelRows rows at a time) into per-thread f32 scratch, so a bf16 or quantized base is
// never materialised whole in f32. bf16 compute (W.bf16_compute): the activations are rounded
// to bf16 once per call and a BF16 W is used in place (other types expanded to bf16 panels),
// products summed in f32. A matrix with packed copies
// (W.prepared, a PackedWeight made by pack_weight) multiplies through them. Reference: ref::linear_forward/backward.
#pragma once
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cpu/gemm.h"
#include "quant/qmatrix.h"

namespace tpro {

// out (N,O) = inp (N,I)·Wᵀ (+ bias (O)); accumulate adds into out instead of overwriting.
// inp16 (N,I): inp already rounded to bf16, used when W.bf16_compute (else converted here).
void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias, int64_t N,
                    bool accumulate = false, const uint16_t* inp16 = nullptr);
// dinp (N,I) += dout (N,O)·W, or = when accumulate is false. dout16 as inp16 above.
void linear_backward(float* dinp, const float* dout, const WeightMatrix& W, int64_t N, bool accumulate = true,
                     const uint16_t* dout16 = nullptr);

// Blocked copies of an F32 W multiplied in f32, for both products, when oneDNN reads a blocked
// layout for rows_hint rows; else null pointers (the plain path needs no copy).
struct PackedWeight final : PreparedWeight {
  std::shared_ptr<const PackedB> fwd, bwd;
  size_t bytes() const override;
  bool replaces_data() const override { return fwd && bwd; }
};
PackedWeight pack_weight(const WeightMatrix& W, int64_t rows_hint);
// The bytes pack_weight(W, rows_hint) would hold, without packing (W.data is not read).
size_t packed_weight_bytes(const WeightMatrix& W, int64_t rows_hint);
// The calling thread's scratch of linear_forward/backward for N rows, widths up to W: the
// bf16 input copy (bf16) and the expanded weight panels (panels).
size_t linear_scratch_bytes(int64_t N, int64_t W, bool bf16, bool panels);
// Rows of a weight panel expanded into scratch (a matrix neither F32 nor BF16 in its compute type).
constexpr int64_t kLinearPanelRows = 1024;

// Rows [row0, row0+n) of W as f32 into dst (n, cols). Plain types converted here, block
// quants through quant/'s dequantize_rows.
void weight_rows_f32(const WeightMatrix& W, int64_t row0, int64_t n, float* dst);

}  // namespace tpro
