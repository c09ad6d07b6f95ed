// Causal grouped-query attention, blocked over queries: S = QKᵀ/√Dh and O = PV are GEMMs on
// a query block against only the keys it may see (the causal half is never computed). Forward
// saves lse (log-sum-exp per row); backward recomputes P from it (FlashAttention-style), so
// no T×T matrix outlives a block. Query head h reads kv head h/(H/Hkv). In bf16 mode the
// products take head-major bf16 copies of q, k, v, dout (dense tiles, as AMX kernels need)
// and P, dS rounded to bf16; softmax, lse and every sum stay f32.
// Reference: ref::attention_forward/backward; Dao et al., FlashAttention-2 (2023), alg. 1-2.
#pragma once
#include <cstdint>

#include "kernels/backend.h"  // AttnShape

namespace tpro {

// out (B,Tq,H,Dh); lse (B,H,Tq) or null; q (B,Tq,H,Dh); k, v (B,Tk,Hkv,Dh) with row strides
// kv_stride (elements between consecutive key positions; Hkv*Dh when packed);
// seg_start (B,Tq) or null: first key position (absolute) each query may attend.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const int32_t* seg_start, const AttnShape& s, int64_t kv_stride = 0);
// dq (B,T,H,Dh) =; dk, dv (B,T,Hkv,Dh) =. Training shape only (Tq == Tk).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* seg_start,
                        const AttnShape& s);

// The thread scratch a training step's attention keeps (forward and backward, shape s with
// Tq == Tk, `threads` OpenMP threads): the per-head dK/dV sums and bf16 head-major copies on
// the calling thread, the score blocks on every thread. For the memory plan.
size_t attention_scratch_bytes(const AttnShape& s, int threads);

}  // namespace tpro
