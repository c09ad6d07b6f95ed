// The CPU backend: the op table filled from kernels/cpu.
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/linear.h"
#include "model/backend.h"

namespace tpro {

const Backend& cpu_backend() {
  static const Backend b = {
      "cpu",
      &linear_forward,
      &linear_backward,
      &lora_forward,
      &lora_backward,
      &convert_f32_to_bf16,
      &rmsnorm_forward,
      &rmsnorm_backward,
      &rope_forward,
      &attention_forward,
      &attention_backward,
      &swiglu_forward,
      &swiglu_backward,
      &embedding_forward,
      &cross_entropy_fused,
  };
  return b;
}

}  // namespace tpro
