// DoRA forward/backward from the linear and LoRA kernels plus per-column scaling; see dora.h.
#include "kernels/cpu/dora.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/lora.h"
#include "kernels/cpu/parallel.h"

namespace tpro {

namespace {

enum Scratch { kG, kBase, kScaled, kScaled16, kDropped, kDx, kScratchCount };
constexpr int64_t kNormRows = 32;  // rows of W expanded at a time by dora_weight_norm

template <typename T>
T* scratch(Scratch which, int64_t n) {
  thread_local std::vector<uint8_t> buf[kScratchCount];
  auto& b = buf[which];
  if (b.size() < size_t(n) * sizeof(T)) b.resize(size_t(n) * sizeof(T));
  return reinterpret_cast<T*>(b.data());
}

// g (O) = mag / wn, after refreshing wn when the adapter changed.
const float* column_scale(const WeightMatrix& W, const LoraOperands& lo) {
  const int64_t O = W.rows;
  if (lo.wnorm_stale) dora_weight_norm(lo.wnorm, W, lo.A, lo.B, lo.scale, lo.R);
  float* g = scratch<float>(kG, O);
  for (int64_t o = 0; o < O; ++o) g[o] = lo.mag[o] / lo.wnorm[o];
  return g;
}

// The dropped input xd = keep ⊙ x (lora_dropout_keep's mask, the one lora_forward applies).
const float* dropped(const float* x, const LoraDropout& d, int64_t N, int64_t I) {
  float* xd = scratch<float>(kDropped, N * I);
#pragma omp parallel for if (worth_parallel(N * I))
  for (int64_t k = 0; k < N * I; ++k) xd[k] = x[k] * lora_dropout_keep(d, uint64_t(k));
  return xd;
}

// f(k, o) for every element k = n·O + o of an (N, O) matrix.
template <typename F>
void per_element(int64_t N, int64_t O, F f) {
#pragma omp parallel for if (worth_parallel(N * O))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) f(n * O + o, o);
}

}  // namespace

void dora_weight_norm(float* wn, const WeightMatrix& W, const float* A, const float* B, float s, int64_t R) {
  const int64_t O = W.rows, I = W.cols, panels = (O + kNormRows - 1) / kNormRows;
  // Panels in parallel: inside the region the expansion and the product run on the calling thread.
#pragma omp parallel for schedule(dynamic) if (worth_parallel(O * I * (R + 1)))
  for (int64_t p = 0; p < panels; ++p) {
    thread_local std::vector<float> rows;
    const int64_t o0 = p * kNormRows, n = std::min(kNormRows, O - o0);
    if (rows.size() < size_t(n * I)) rows.resize(size_t(n * I));
    weight_rows_f32(W, o0, n, rows.data());
    sgemm(false, false, n, I, R, s, B + o0 * R, R, A, I, 1.0f, rows.data(), I);  // + s·B·A
    for (int64_t r = 0; r < n; ++r) {
      double ss = 0.0;
      for (int64_t i = 0; i < I; ++i) ss += double(rows[size_t(r * I + i)]) * rows[size_t(r * I + i)];
      wn[o0 + r] = float(std::sqrt(ss));
    }
  }
}

void dora_forward(float* out, const float* x, const WeightMatrix& W, const float* bias, const LoraOperands& lo,
                  int64_t N, const uint16_t* x16) {
  const int64_t I = W.cols, O = W.rows;
  const float* g = column_scale(W, lo);
  if (lo.dropout.p <= 0.0f) {  // g ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + bias
    linear_forward(out, x, W, nullptr, N, false, x16);
    lora_forward(out, lo.u, x, lo.A, lo.B, lo.scale, lo.dropout, N, I, O, lo.R, x16);
    per_element(N, O, [&](int64_t k, int64_t o) { out[k] = g[o] * out[k] + (bias ? bias[o] : 0.0f); });
    return;
  }
  // x·Wᵀ + bias + (g − 1)⊙(xd·Wᵀ) + g⊙(s·xd·Aᵀ·Bᵀ)
  linear_forward(out, x, W, bias, N, false, x16);
  float* z = scratch<float>(kBase, N * O);
  linear_forward(z, dropped(x, lo.dropout, N, I), W, nullptr, N, false, nullptr);
  per_element(N, O, [&](int64_t k, int64_t o) { out[k] += (g[o] - 1.0f) * z[k]; });
  std::fill(z, z + N * O, 0.0f);
  lora_forward(z, lo.u, x, lo.A, lo.B, lo.scale, lo.dropout, N, I, O, lo.R, x16);
  per_element(N, O, [&](int64_t k, int64_t o) { out[k] += g[o] * z[k]; });
}

void dora_backward(float* dx, const float* dy, const float* x, const WeightMatrix& W, const LoraOperands& lo,
                   int64_t N, bool accumulate, const uint16_t* dy16, const uint16_t* x16) {
  const int64_t I = W.cols, O = W.rows, R = lo.R;
  const bool drop = lo.dropout.p > 0.0f;
  const float* g = column_scale(W, lo);
  // dmag += Σ_n dy ⊙ (xd·Wᵀ + s·u·Bᵀ) / wn: the base product again, as the forward made it.
  float* z = scratch<float>(kBase, N * O);
  const float* xd = drop ? dropped(x, lo.dropout, N, I) : x;
  linear_forward(z, xd, W, nullptr, N, false, drop ? nullptr : x16);
  sgemm(false, true, N, O, R, lo.scale, lo.u, R, lo.B, R, 1.0f, z, O);
#pragma omp parallel for if (worth_parallel(N * O))
  for (int64_t o = 0; o < O; ++o) {
    double acc = 0.0;
    for (int64_t n = 0; n < N; ++n) acc += double(dy[n * O + o]) * z[n * O + o];
    lo.dmag[o] += float(acc / double(lo.wnorm[o]));
  }
  // g ⊙ dy drives the adapter (and, without dropout, the whole base).
  float* gdy = scratch<float>(kScaled, N * O);
  per_element(N, O, [&](int64_t k, int64_t o) { gdy[k] = g[o] * dy[k]; });
  const uint16_t* gdy16 = nullptr;
  if (W.bf16_compute) {
    uint16_t* h = scratch<uint16_t>(kScaled16, N * O);
    convert_f32_to_bf16(gdy, h, N * O);
    gdy16 = h;
  }
  if (!drop) {
    linear_backward(dx, gdy, W, N, accumulate, gdy16);
  } else {  // dx = dy·W + keep ⊙ (((g − 1)⊙dy)·W)
    linear_backward(dx, dy, W, N, accumulate, dy16);
    per_element(N, O, [&](int64_t k, int64_t o) { z[k] = (g[o] - 1.0f) * dy[k]; });
    float* t = scratch<float>(kDx, N * I);
    linear_backward(t, z, W, N, false, nullptr);
#pragma omp parallel for if (worth_parallel(N * I))
    for (int64_t k = 0; k < N * I; ++k) dx[k] += t[k] * lora_dropout_keep(lo.dropout, uint64_t(k));
  }
  lora_backward(dx, lo.dA, lo.dB, gdy, x, lo.u, lo.A, lo.B, lo.scale, lo.dropout, N, I, O, R,
                gdy16 && x16 ? gdy16 : nullptr, gdy16 && x16 ? x16 : nullptr);
}

size_t dora_scratch_bytes(int64_t N, int64_t W, bool bf16, bool dropout, int threads) {
  const size_t nw = size_t(N * W);
  size_t b = size_t(W) * 4 + 2 * nw * 4;  // kG, kBase, kScaled
  if (bf16) b += nw * 2;                  // kScaled16
  if (dropout) b += 2 * nw * 4;           // kDropped, kDx
  return b + size_t(threads) * size_t(kNormRows * W) * 4;  // dora_weight_norm's panels
}

}  // namespace tpro
