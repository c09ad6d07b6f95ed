// Named activation buffers for one micro-batch shape (B, T), sized from the config and
// allocated once in an Arena: what forward saves for backward, the gradient scratch that
// backward reuses layer after layer, and one chunk of LM-head logits (never (B·T, V) whole).
// Legend: N = B·T rows, D, F, Q = H·Dh, KV = Hkv·Dh, R LoRA rank, V vocab, C logit chunk rows.
#pragma once
#include <array>
#include <vector>

#include "core/arena.h"
#include "kernels/cpu/norm_rope_swiglu.h"
#include "model/lora.h"

namespace tpro {

struct LayerActs {
  float* x_in;    // (N, D) residual stream entering the layer
  float* ln1;     // (N, D) input_layernorm output
  float* rstd1;   // (N)
  float* q;       // (N, Q) after RoPE
  float* k;       // (N, KV) after RoPE
  float* v;       // (N, KV)
  float* att;     // (N, Q) attention output, o_proj input
  float* lse;     // (B, H, T)
  float* x_mid;   // (N, D) residual after attention
  float* ln2;     // (N, D)
  float* rstd2;   // (N)
  float* gate;    // (N, F) gate_proj output (pre-SiLU)
  float* up;      // (N, F)
  float* h;       // (N, F) silu(gate)·up, down_proj input
  std::array<float*, kNumProj> lora_u{};  // (N, R) each, null when the projection has no adapter
  // bf16 copies of the matmul inputs above (bf16 compute only, else null)
  uint16_t* ln1_16;  // (N, D)
  uint16_t* att_16;  // (N, Q)
  uint16_t* ln2_16;  // (N, D)
  uint16_t* h_16;    // (N, F)
};

struct Activations {
  int64_t B = 0, T = 0, C = 0;
  int64_t capacity = 0;  // rows (B·T) the arena was planned for
  bool bf16 = false;     // holds the bf16 copies of matmul operands (bf16 compute)
  // Activation recomputation (gradient checkpointing): only each layer's input is kept; all
  // layers share one set of the other buffers, refilled by re-running the layer in backward.
  bool recompute = false;
  float* x_scratch = nullptr;  // (N, D) recompute's throw-away layer output
  std::vector<LayerActs> layers;
  float* x_out;   // (N, D) residual after the last layer
  float* lnf;     // (N, D) final norm output
  float* rstdf;   // (N)
  float* logits;  // (C, V) one chunk
  float* gath;    // (C, D) final-norm rows of the chunk's trained positions
  float* dgath;   // (C, D) their gradient
  std::vector<int64_t> trained_rows;  // rows with a target, in order
  float* weight;  // (N) loss weight per row
  int32_t* targets;  // (N) next token or -1
  float* nll;     // (N) per-row −log p(target)
  // gradient scratch, reused across layers
  float* dx;      // (N, D) gradient of the residual stream
  float* dln;     // (N, D)
  float* dq;      // (N, Q)
  float* dk;      // (N, KV)
  float* dv;      // (N, KV)
  float* datt;    // (N, Q)
  float* dgate;   // (N, F)
  float* dup;     // (N, F)
  float* dh;      // (N, F)
  uint16_t* dout_16;  // (N, max(D, F, Q)) bf16 copy of the projection gradient being propagated, or null
  std::vector<int32_t> pos_default;  // (N) 0..T-1 per row
  RopeTable rope;
  Arena arena;
};

// Allocates everything for up to B·T rows (and T ≤ T of this call); lora may be null
// (evaluation without adapter). Sets the current shape to (B, T). bf16: also the bf16 copies
// of the matmul operands (for a model whose matrices compute in bf16; see computes_bf16 in base_weights.h).
void make_activations(Activations& a, const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T,
                      bool recompute = false, bool bf16 = false);
// Re-carves the same allocation for another shape with B·T ≤ the capacity (dynamic padding
// changes T per micro-batch); never allocates.
void reshape_activations(Activations& a, const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T);

}  // namespace tpro
