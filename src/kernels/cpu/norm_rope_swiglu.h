// Elementwise and per-row ops of the Llama block: RMSNorm, RoPE (HF rotate_half layout, with
// a per-position cos/sin table), SwiGLU, and the embedding lookup. f32, OpenMP over rows.
// Maths and accumulation contracts are those of kernels/cpu/reference.h, which tests compare.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/backend.h"  // RopeTable
#include "quant/qmatrix.h"

namespace tpro {

// out (N,D), rstd (N) saved for backward; inp (N,D), w (D).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, float eps, int64_t N, int64_t D);
// dinp (N,D) += (accumulates: the residual stream's gradient).
void rmsnorm_backward(float* dinp, const float* dout, const float* inp, const float* w, const float* rstd, int64_t N,
                      int64_t D);

// cos, sin (n_pos, half) of pos·inv_freq[j]: angles in double, stored f32.
void rope_table_build(float* cos, float* sin, const float* inv_freq, int64_t half, int64_t n_pos, float mscale = 1.0f);
// x (N, H, Dh) rotated in place by position pos[n]; backward rotates back (the inverse).
void rope_forward(float* x, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh);
void rope_backward(float* dx, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh);

// dE (V,D) += the rows of dout (N,D) scattered to their tokens (embedding backward).
void embedding_backward(float* dE, const float* dout, const int32_t* tokens, int64_t N, int64_t D);

// out (n) = silu(gate)·up; backward writes dgate, dup (n) (=, not accumulated).
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// out (n) = gelu_tanh(gate)·up (GeGLU, torch's approximate="tanh"); backward writes dgate, dup (=).
void geglu_forward(float* out, const float* gate, const float* up, int64_t n);
void geglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);
// x (n) = cap·tanh(x/cap) in place.
void softcap_inplace(float* x, int64_t n, float cap);

// out (N,D) = rows tokens[n] of the (V,D) embedding, any WType. Token ids must be < V.
void embedding_forward(float* out, const int32_t* tokens, const WeightMatrix& emb, int64_t N);

}  // namespace tpro
