// Frozen projections on the GEMM of gemm.h; see linear.h.
#include "kernels/cpu/linear.h"
#include "kernels/cpu/parallel.h"

#include <omp.h>

#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace tpro {

namespace {
constexpr int64_t kPanelRows = kLinearPanelRows;

// Per-thread scratch, one buffer per use so that a panel and a converted input coexist.
enum Scratch { kPanelF32, kPanelBf16, kInputBf16, kScratchCount };

template <typename T>
T* scratch(Scratch which, size_t n) {
  thread_local std::vector<uint8_t> buf[kScratchCount];
  auto& b = buf[which];
  if (b.size() < n * sizeof(T)) b.resize(n * sizeof(T));
  return reinterpret_cast<T*>(b.data());
}

// Rows [row0, row0+n) of W as bf16: in place for a BF16 matrix, else expanded into scratch.
const uint16_t* weight_rows_bf16(const WeightMatrix& W, int64_t row0, int64_t n) {
  if (W.type == WType::BF16) return static_cast<const uint16_t*>(W.data) + row0 * W.cols;
  float* f = scratch<float>(kPanelF32, size_t(n * W.cols));
  weight_rows_f32(W, row0, n, f);
  uint16_t* h = scratch<uint16_t>(kPanelBf16, size_t(n * W.cols));
  convert_f32_to_bf16(f, h, n * W.cols);
  return h;
}

const uint16_t* input_bf16(const float* x, int64_t n) {
  uint16_t* h = scratch<uint16_t>(kInputBf16, size_t(n));
  convert_f32_to_bf16(x, h, n);
  return h;
}

// A BF16 matrix is one panel; other types go kPanelRows rows at a time.
int64_t panel_rows(const WeightMatrix& W) {
  return (W.type == WType::F32 && !W.bf16_compute) || (W.type == WType::BF16 && W.bf16_compute) ? W.rows
                                                                                                  : kPanelRows;
}

void add_bias(float* out, const float* bias, int64_t N, int64_t O) {
#pragma omp parallel for if (worth_parallel(N * O))
  for (int64_t r = 0; r < N; ++r)
    for (int64_t o = 0; o < O; ++o) out[r * O + o] += bias[o];
}
// The packed copy to use for a product, or null (absent, or packed for another compute type).
const PackedB* usable(const WeightMatrix& W, bool fwd) {
  const auto* pw = dynamic_cast<const PackedWeight*>(W.prepared);
  const PackedB* p = !pw ? nullptr : fwd ? pw->fwd.get() : pw->bwd.get();
  return p && packed_is_bf16(*p) == W.bf16_compute ? p : nullptr;
}
}  // namespace

size_t PackedWeight::bytes() const { return (fwd ? packed_bytes(*fwd) : 0) + (bwd ? packed_bytes(*bwd) : 0); }

PackedWeight pack_weight(const WeightMatrix& W, int64_t rows_hint) {
  // F32 weights multiplied in f32 only: measured in training steps (docs/PERFORMANCE.md), packed
  // copies made f32 products ~16% faster and bf16 (AMX) ones no faster, for twice the memory.
  PackedWeight p;
  if (W.type != WType::F32 || W.bf16_compute) return p;
  // x·Wᵀ: B = Wᵀ (I, O), W stored (O, I); dy·W: B = W (O, I).
  p.fwd = pack_b(true, W.cols, W.rows, W.data, W.cols, false, false, rows_hint);
  p.bwd = pack_b(false, W.rows, W.cols, W.data, W.cols, false, false, rows_hint);
  return p;
}

size_t linear_scratch_bytes(int64_t N, int64_t W, bool bf16, bool panels) {
  size_t b = bf16 ? size_t(N * W) * sizeof(uint16_t) : 0;  // kInputBf16
  if (panels) b += size_t(kPanelRows * W) * (sizeof(float) + (bf16 ? sizeof(uint16_t) : 0));  // kPanelF32, kPanelBf16
  return b;
}

size_t packed_weight_bytes(const WeightMatrix& W, int64_t rows_hint) {
  if (W.type != WType::F32 || W.bf16_compute) return 0;  // the rule of pack_weight
  return pack_b_bytes(true, W.cols, W.rows, W.cols, false, false, rows_hint) +
         pack_b_bytes(false, W.rows, W.cols, W.cols, false, false, rows_hint);
}

void weight_rows_f32(const WeightMatrix& W, int64_t row0, int64_t n, float* dst) {
  const int64_t cols = W.cols;
  if (W.type == WType::F32) {
    std::memcpy(dst, static_cast<const float*>(W.data) + row0 * cols, size_t(n * cols) * 4);
    return;
  }
  // quant/'s AVX2 dequantizers (bf16/f16 included), split over the threads by row blocks.
  constexpr int64_t kRows = 16;
#pragma omp parallel for schedule(static) if (worth_parallel(n * cols))
  for (int64_t r = 0; r < n; r += kRows) dequantize_rows(W, row0 + r, std::min(kRows, n - r), dst + r * cols);
}

void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias, int64_t N,
                    bool accumulate, const uint16_t* inp16) {
  const int64_t I = W.cols, O = W.rows, step = panel_rows(W);
  const float beta = accumulate ? 1.0f : 0.0f;
  const uint16_t* x16 = !W.bf16_compute ? nullptr : inp16 ? inp16 : input_bf16(inp, N * I);
  const void* x = x16 ? static_cast<const void*>(x16) : inp;
  if (const PackedB* p = usable(W, true); p && gemm_packed(N, 1.0f, x, I, *p, beta, out, O)) {
    if (bias) add_bias(out, bias, N, O);
    return;
  }
  for (int64_t o0 = 0; o0 < O; o0 += step) {
    const int64_t n = std::min(step, O - o0);
    if (W.bf16_compute) {
      gemm_bf16(false, true, N, n, I, 1.0f, x16, I, weight_rows_bf16(W, o0, n), I, beta, out + o0, O);
    } else if (W.type == WType::F32) {
      sgemm(false, true, N, n, I, 1.0f, inp, I, static_cast<const float*>(W.data) + o0 * I, I, beta, out + o0, O);
    } else {
      float* panel = scratch<float>(kPanelF32, size_t(n * I));
      weight_rows_f32(W, o0, n, panel);
      sgemm(false, true, N, n, I, 1.0f, inp, I, panel, I, beta, out + o0, O);
    }
  }
  if (bias) add_bias(out, bias, N, O);
}

void linear_backward(float* dinp, const float* dout, const WeightMatrix& W, int64_t N, bool accumulate,
                     const uint16_t* dout16) {
  const int64_t I = W.cols, O = W.rows, step = panel_rows(W);
  const uint16_t* dy16 = !W.bf16_compute ? nullptr : dout16 ? dout16 : input_bf16(dout, N * O);
  const void* dy = dy16 ? static_cast<const void*>(dy16) : dout;
  if (const PackedB* p = usable(W, false); p && gemm_packed(N, 1.0f, dy, O, *p, accumulate ? 1.0f : 0.0f, dinp, I))
    return;
  for (int64_t o0 = 0; o0 < O; o0 += step) {
    const int64_t n = std::min(step, O - o0);
    const float beta = accumulate || o0 > 0 ? 1.0f : 0.0f;
    if (W.bf16_compute) {
      gemm_bf16(false, false, N, I, n, 1.0f, dy16 + o0, O, weight_rows_bf16(W, o0, n), I, beta, dinp, I);
    } else if (W.type == WType::F32) {
      sgemm(false, false, N, I, n, 1.0f, dout + o0, O, static_cast<const float*>(W.data) + o0 * I, I, beta, dinp, I);
    } else {
      float* panel = scratch<float>(kPanelF32, size_t(n * I));
      weight_rows_f32(W, o0, n, panel);
      sgemm(false, false, N, I, n, 1.0f, dout + o0, O, panel, I, beta, dinp, I);
    }
  }
}

}  // namespace tpro
