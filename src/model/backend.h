// The op table model code calls: one instance per device, filled from kernels/<device>/.
// Forward/backward orchestration never branches on the device; a CUDA backend fills the same
// table with kernels over device pointers.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/lora.h"
#include "kernels/cpu/norm_rope_swiglu.h"
#include "quant/qmatrix.h"

namespace tpro {

struct Backend {
  const char* name;
  // The optional uint16_t* operands are bf16 copies of the f32 ones (see linear.h, lora.h).
  void (*linear_forward)(float* out, const float* inp, const WeightMatrix& W, const float* bias, int64_t N,
                         bool accumulate, const uint16_t* inp16);
  void (*linear_backward)(float* dinp, const float* dout, const WeightMatrix& W, int64_t N, bool accumulate,
                          const uint16_t* dout16);
  void (*lora_forward)(float* out, float* u, const float* inp, const float* A, const float* B, float s,
                       const LoraDropout& drop, int64_t N, int64_t I, int64_t O, int64_t R, const uint16_t* inp16);
  void (*lora_backward)(float* dinp, float* dA, float* dB, const float* dout, const float* inp, const float* u,
                        const float* A, const float* B, float s, const LoraDropout& drop, int64_t N, int64_t I,
                        int64_t O, int64_t R, const uint16_t* dout16, const uint16_t* inp16);
  void (*to_bf16)(const float* src, uint16_t* dst, int64_t n);
  void (*rmsnorm_forward)(float* out, float* rstd, const float* inp, const float* w, float eps, int64_t N, int64_t D);
  void (*rmsnorm_backward)(float* dinp, const float* dout, const float* inp, const float* w, const float* rstd,
                           int64_t N, int64_t D);
  void (*rope_forward)(float* x, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh,
                       bool inverse);
  void (*attention_forward)(float* out, float* lse, const float* q, const float* k, const float* v,
                            const int32_t* seg_start, const AttnShape& s, int64_t kv_stride);
  void (*attention_backward)(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                             const float* v, const float* out, const float* lse, const int32_t* seg_start,
                             const AttnShape& s);
  void (*swiglu_forward)(float* out, const float* gate, const float* up, int64_t n);
  void (*swiglu_backward)(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);
  void (*embedding_forward)(float* out, const int32_t* tokens, const WeightMatrix& emb, int64_t N);
  double (*cross_entropy_fused)(float* logits, const int32_t* targets, const float* weight, int64_t n, int64_t V,
                                float* nll, bool want_grad);
};

const Backend& cpu_backend();

}  // namespace tpro
