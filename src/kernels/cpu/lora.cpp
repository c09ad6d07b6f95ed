// LoRA forward/backward as four small SGEMMs; see lora.h.
#include "kernels/cpu/lora.h"
#include "kernels/cpu/parallel.h"

#include <vector>

#include "kernels/cpu/linear.h"

namespace tpro {

namespace {
// Returns inp, or inp ⊙ keep in thread-local scratch when dropout is on.
const float* dropped_input(const float* inp, const LoraDropout& drop, int64_t N, int64_t I) {
  if (drop.p <= 0.0f) return inp;
  thread_local std::vector<float> buf;
  if (buf.size() < size_t(N * I)) buf.resize(size_t(N * I));
  float* x = buf.data();
#pragma omp parallel for if (worth_parallel(N * I))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) x[n * I + i] = inp[n * I + i] * lora_dropout_keep(drop, uint64_t(n * I + i));
  return x;
}
}  // namespace

void lora_forward(float* out, float* u, const float* inp, const float* A, const float* B, float s,
                  const LoraDropout& drop, int64_t N, int64_t I, int64_t O, int64_t R) {
  const float* x = dropped_input(inp, drop, N, I);
  sgemm(false, true, N, R, I, 1.0f, x, I, A, I, 0.0f, u, R);    // u = x·Aᵀ
  sgemm(false, true, N, O, R, s, u, R, B, R, 1.0f, out, O);     // out += s·u·Bᵀ
}

void lora_backward(float* dinp, float* dA, float* dB, const float* dout, const float* inp, const float* u,
                   const float* A, const float* B, float s, const LoraDropout& drop, int64_t N, int64_t I, int64_t O,
                   int64_t R) {
  thread_local std::vector<float> du_buf;
  if (du_buf.size() < size_t(N * R)) du_buf.resize(size_t(N * R));
  float* du = du_buf.data();
  sgemm(true, false, O, R, N, s, dout, O, u, R, 1.0f, dB, R);   // dB += s·doutᵀ·u
  sgemm(false, false, N, R, O, s, dout, O, B, R, 0.0f, du, R);  // du = s·dout·B
  const float* x = dropped_input(inp, drop, N, I);
  sgemm(true, false, R, I, N, 1.0f, du, R, x, I, 1.0f, dA, I);  // dA += duᵀ·x
  if (drop.p <= 0.0f) {
    sgemm(false, false, N, I, R, 1.0f, du, R, A, I, 1.0f, dinp, I);  // dinp += du·A
    return;
  }
  thread_local std::vector<float> dx_buf;
  if (dx_buf.size() < size_t(N * I)) dx_buf.resize(size_t(N * I));
  float* dx = dx_buf.data();
  sgemm(false, false, N, I, R, 1.0f, du, R, A, I, 0.0f, dx, I);
#pragma omp parallel for if (worth_parallel(N * I))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) dinp[n * I + i] += dx[n * I + i] * lora_dropout_keep(drop, uint64_t(n * I + i));
}

}  // namespace tpro
