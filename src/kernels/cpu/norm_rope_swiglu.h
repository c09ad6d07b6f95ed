// Elementwise and per-row ops of the Llama block: RMSNorm, RoPE (HF rotate_half layout, with
// a per-position cos/sin table), SwiGLU, and the embedding lookup. f32, OpenMP over rows.
// Maths and accumulation contracts are those of kernels/cpu/reference.h, which tests compare.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/qmatrix.h"

namespace tpro {

// out (N,D), rstd (N) saved for backward; inp (N,D), w (D).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, float eps, int64_t N, int64_t D);
// dinp (N,D) += (accumulates: the residual stream's gradient).
void rmsnorm_backward(float* dinp, const float* dout, const float* inp, const float* w, const float* rstd, int64_t N,
                      int64_t D);

// cos/sin of pos·inv_freq[j] for pos in [0, n_pos), j in [0, Dh/2): angles in double, stored f32.
struct RopeTable {
  int64_t half = 0, n_pos = 0;
  std::vector<float> cos, sin;  // (n_pos, half)
  std::vector<float> inv_freq;  // (half) the frequencies the table was built from
  void build(const std::vector<float>& inv_freq, int64_t n_pos);
};
// x (N, H, Dh) rotated in place by position pos[n]; inverse rotates back (the backward).
void rope_forward(float* x, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh,
                  bool inverse = false);

// out (n) = silu(gate)·up; backward writes dgate, dup (n) (=, not accumulated).
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// out (N,D) = rows tokens[n] of the (V,D) embedding, any WType. Token ids must be < V.
void embedding_forward(float* out, const int32_t* tokens, const WeightMatrix& emb, int64_t N);

}  // namespace tpro
