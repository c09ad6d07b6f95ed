// LoRA on a frozen projection: out += s·dropout(inp)·Aᵀ·Bᵀ, with s = α/r (α/√r for rsLoRA).
// Backward gives dinp, dA, dB; the rank-R products stay tiny (N×R). Dropout (PEFT applies it
// to the LoRA input only) is regenerated in backward from (seed, index), never stored.
// Reference: ref::lora_forward/backward with keep = lora_dropout_keep(...).
#pragma once
#include <cstdint>

#include "core/rng.h"
#include "kernels/backend.h"  // LoraDropout

namespace tpro {

// The dropout multiplier of element idx: 0 with probability p, else 1/(1-p).
inline float lora_dropout_keep(const LoraDropout& d, uint64_t idx) {
  return hash_uniform(d.seed, idx) < d.p ? 0.0f : 1.0f / (1.0f - d.p);
}

// out (N,O) +=, saves u (N,R). inp (N,I), A (R,I), B (O,R).
// With inp16 (inp rounded to bf16, (N,I)) the products over I run in bf16 with f32 sums (as
// torch.autocast runs PEFT's lora_A/lora_B); the rank-R update of out stays f32.
void lora_forward(float* out, float* u, const float* inp, const float* A, const float* B, float s,
                  const LoraDropout& drop, int64_t N, int64_t I, int64_t O, int64_t R,
                  const uint16_t* inp16 = nullptr);
// dinp (N,I) +=, dA (R,I) +=, dB (O,R) +=. With dout16 (N,O) and inp16 (N,I), the products
// over N and O run in bf16 (f32 sums, f32 gradients); dinp's rank-R update stays f32.
void lora_backward(float* dinp, float* dA, float* dB, const float* dout, const float* inp, const float* u,
                   const float* A, const float* B, float s, const LoraDropout& drop, int64_t N, int64_t I, int64_t O,
                   int64_t R, const uint16_t* dout16 = nullptr, const uint16_t* inp16 = nullptr);

// The calling thread's scratch of lora_forward/backward for N rows, widths up to W, rank R.
size_t lora_scratch_bytes(int64_t N, int64_t W, int64_t R, bool bf16, bool dropout);

}  // namespace tpro
