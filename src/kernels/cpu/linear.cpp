// Frozen projections through OpenBLAS SGEMM; see linear.h.
#include "kernels/cpu/linear.h"
#include "kernels/cpu/parallel.h"

#include <cblas.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace tpro {

namespace {
constexpr int64_t kPanelRows = 1024;

float* panel_scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}
}  // namespace

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
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
                    bool accumulate) {
  const int64_t I = W.cols, O = W.rows;
  if (W.type == WType::F32) {
    sgemm(false, true, N, O, I, 1.0f, inp, I, static_cast<const float*>(W.data), I, accumulate ? 1.0f : 0.0f, out, O);
  } else {
    float* panel = panel_scratch(size_t(kPanelRows * I));
    for (int64_t o0 = 0; o0 < O; o0 += kPanelRows) {
      int64_t n = std::min(kPanelRows, O - o0);
      weight_rows_f32(W, o0, n, panel);
      sgemm(false, true, N, n, I, 1.0f, inp, I, panel, I, accumulate ? 1.0f : 0.0f, out + o0, O);
    }
  }
  if (bias) {
#pragma omp parallel for if (worth_parallel(N * O))
    for (int64_t r = 0; r < N; ++r)
      for (int64_t o = 0; o < O; ++o) out[r * O + o] += bias[o];
  }
}

void linear_backward(float* dinp, const float* dout, const WeightMatrix& W, int64_t N, bool accumulate) {
  const int64_t I = W.cols, O = W.rows;
  if (W.type == WType::F32) {
    sgemm(false, false, N, I, O, 1.0f, dout, O, static_cast<const float*>(W.data), I, accumulate ? 1.0f : 0.0f, dinp,
          I);
    return;
  }
  float* panel = panel_scratch(size_t(kPanelRows * I));
  for (int64_t o0 = 0; o0 < O; o0 += kPanelRows) {
    int64_t n = std::min(kPanelRows, O - o0);
    weight_rows_f32(W, o0, n, panel);
    const bool acc = accumulate || o0 > 0;
    sgemm(false, false, N, I, n, 1.0f, dout + o0, O, panel, I, acc ? 1.0f : 0.0f, dinp, I);
  }
}

}  // namespace tpro
