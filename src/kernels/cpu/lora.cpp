// LoRA forward/backward as four small GEMMs each; see lora.h.
#include "kernels/cpu/lora.h"
#include "kernels/cpu/parallel.h"

#include <vector>

#include "kernels/cpu/gemm.h"

namespace tpro {

namespace {

enum Scratch { kDropped, kDropped16, kA16, kB16, kU16, kDu, kDu16, kDx, kScratchCount };

template <typename T>
T* scratch(Scratch which, int64_t n) {
  thread_local std::vector<uint8_t> buf[kScratchCount];
  auto& b = buf[which];
  if (b.size() < size_t(n) * sizeof(T)) b.resize(size_t(n) * sizeof(T));
  return reinterpret_cast<T*>(b.data());
}

const uint16_t* bf16_copy(Scratch which, const float* x, int64_t n) {
  uint16_t* h = scratch<uint16_t>(which, n);
  convert_f32_to_bf16(x, h, n);
  return h;
}

// Returns inp, or inp ⊙ keep in thread-local scratch when dropout is on.
const float* dropped_input(const float* inp, const LoraDropout& drop, int64_t N, int64_t I) {
  if (drop.p <= 0.0f) return inp;
  float* x = scratch<float>(kDropped, N * I);
#pragma omp parallel for if (worth_parallel(N * I))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) x[n * I + i] = inp[n * I + i] * lora_dropout_keep(drop, uint64_t(n * I + i));
  return x;
}

// The LoRA input in bf16: inp16 itself, or the dropped input rounded.
const uint16_t* dropped_input16(const float* inp, const uint16_t* inp16, const LoraDropout& drop, int64_t N,
                                int64_t I) {
  if (drop.p <= 0.0f) return inp16;
  return bf16_copy(kDropped16, dropped_input(inp, drop, N, I), N * I);
}

// dinp += du·A, through the dropout mask when on (du (N,R) f32).
void add_input_grad(float* dinp, const float* du, const float* A, const LoraDropout& drop, int64_t N, int64_t I,
                    int64_t R) {
  if (drop.p <= 0.0f) {
    sgemm(false, false, N, I, R, 1.0f, du, R, A, I, 1.0f, dinp, I);
    return;
  }
  float* dx = scratch<float>(kDx, N * I);
  sgemm(false, false, N, I, R, 1.0f, du, R, A, I, 0.0f, dx, I);
#pragma omp parallel for if (worth_parallel(N * I))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) dinp[n * I + i] += dx[n * I + i] * lora_dropout_keep(drop, uint64_t(n * I + i));
}

}  // namespace

size_t lora_scratch_bytes(int64_t N, int64_t W, int64_t R, bool bf16, bool dropout) {
  const size_t nw = size_t(N * W), nr = size_t(N * R), rw = size_t(R * W);
  size_t b = nr * sizeof(float);                                        // kDu
  if (dropout) b += 2 * nw * sizeof(float) + (bf16 ? nw * 2 : 0);       // kDropped, kDx, kDropped16
  if (bf16) b += 2 * rw * sizeof(uint16_t) + 2 * nr * sizeof(uint16_t);  // kA16, kB16, kU16, kDu16
  return b;
}

void lora_forward(float* out, float* u, const float* inp, const float* A, const float* B, float s,
                  const LoraDropout& drop, int64_t N, int64_t I, int64_t O, int64_t R, const uint16_t* inp16) {
  if (inp16) {
    const uint16_t* x = dropped_input16(inp, inp16, drop, N, I);
    gemm_bf16(false, true, N, R, I, 1.0f, x, I, bf16_copy(kA16, A, R * I), I, 0.0f, u, R);  // u = x·Aᵀ
  } else {
    const float* x = dropped_input(inp, drop, N, I);
    sgemm(false, true, N, R, I, 1.0f, x, I, A, I, 0.0f, u, R);  // u = x·Aᵀ
  }
  sgemm(false, true, N, O, R, s, u, R, B, R, 1.0f, out, O);  // out += s·u·Bᵀ
}

void lora_backward(float* dinp, float* dA, float* dB, const float* dout, const float* inp, const float* u,
                   const float* A, const float* B, float s, const LoraDropout& drop, int64_t N, int64_t I, int64_t O,
                   int64_t R, const uint16_t* dout16, const uint16_t* inp16) {
  float* du = scratch<float>(kDu, N * R);
  if (dout16 && inp16) {
    const uint16_t* u16 = bf16_copy(kU16, u, N * R);
    gemm_bf16(true, false, O, R, N, s, dout16, O, u16, R, 1.0f, dB, R);                           // dB += s·doutᵀ·u
    gemm_bf16(false, false, N, R, O, s, dout16, O, bf16_copy(kB16, B, O * R), R, 0.0f, du, R);  // du = s·dout·B
    const uint16_t* x = dropped_input16(inp, inp16, drop, N, I);
    gemm_bf16(true, false, R, I, N, 1.0f, bf16_copy(kDu16, du, N * R), R, x, I, 1.0f, dA, I);  // dA += duᵀ·x
  } else {
    sgemm(true, false, O, R, N, s, dout, O, u, R, 1.0f, dB, R);   // dB += s·doutᵀ·u
    sgemm(false, false, N, R, O, s, dout, O, B, R, 0.0f, du, R);  // du = s·dout·B
    const float* x = dropped_input(inp, drop, N, I);
    sgemm(true, false, R, I, N, 1.0f, du, R, x, I, 1.0f, dA, I);  // dA += duᵀ·x
  }
  add_input_grad(dinp, du, A, drop, N, I, R);
}

}  // namespace tpro
