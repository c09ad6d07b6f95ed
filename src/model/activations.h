// Named activation buffers for one micro-batch shape (B, T), sized from the config and
// allocated once in the backend's memory: what forward saves for backward, the gradient
// scratch that backward reuses layer after layer, one chunk of LM-head logits (never (B·T, V)
// whole), and the batch itself on the device. Bound to one Backend: the step runs on it.
// Legend: N = B·T rows, D, F, Q = H·Dh, KV = Hkv·Dh, R LoRA rank, V vocab, C logit chunk rows.
#pragma once
#include <array>
#include <cstddef>
#include <vector>

#include "kernels/backend.h"
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
  // Qwen3 (per-head q/k RMSNorm before RoPE), else null
  float* q_raw;   // (N, Q) q_proj output
  float* k_raw;   // (N, KV) k_proj output
  float* rstd_q;  // (N·H)
  float* rstd_k;  // (N·Hkv)
  // Gemma's sandwich norms (else null): branch outputs before their norm, and the norms' rstd
  float* o_out;    // (N, D) o_proj output
  float* rstd_pa;  // (N)
  float* f_out;    // (N, D) down_proj output
  float* rstd_pf;  // (N)
  std::array<float*, kNumProj> lora_u{};  // (N, R) each, null when the projection has no adapter
  float* u(Proj p) const { return lora_u[size_t(p)]; }
};

struct ActivationOptions {
  // Activation recomputation (gradient checkpointing): only each layer's input is kept; all
  // layers share one set of the other buffers, refilled by re-running the layer in backward.
  // Generation uses the same sharing (it never runs backward).
  bool recompute = false;
};

struct Activations {
  const Backend* be = nullptr;
  int64_t B = 0, T = 0, C = 0;
  int64_t capacity = 0;  // rows (B·T) the buffers were planned for
  bool recompute = false;
  float* x_scratch = nullptr;  // (N, D) recompute's throw-away layer output
  std::vector<LayerActs> layers;
  float* x_out;   // (N, D) residual after the last layer
  float* lnf;     // (N, D) final norm output
  float* rstdf;   // (N)
  float* logits;  // (C, V) one chunk
  float* gath;    // (C, D) final-norm rows of the chunk's trained positions
  float* dgath;   // (C, D) their gradient
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
  float* dq_raw;  // (N, Q) Qwen3 only, else null
  float* dk_raw;  // (N, KV)
  float* dpost;   // (N, D) gradient of a branch output under a sandwich norm (Gemma only, else null)
  // Phi-3's fused projections (else null): qkv_proj's or gate_up_proj's output before it is
  // split into q, k, v / gate, up, and the gradient put back together for its backward
  float* fused;   // (N, max(Q + 2·KV, 2F))
  float* dfused;  // (N, max(Q + 2·KV, 2F))
  // the batch on the device
  int32_t* tokens;     // (N)
  int32_t* pos;        // (N) position ids (0..T-1 per row when the batch has none)
  int32_t* seg_start;  // (N), or null for this batch when it has no documents
  int32_t* seg_buf;    // (N) where seg_start points when it has
  // the trained rows (those with a next-token target), in row order, n_trained of them
  int64_t n_trained = 0;
  int32_t* rows;     // (N) their row indices
  int32_t* targets;  // (N) their target token
  float* weight;     // (N) their share of the loss (1 / loss_norm)
  float* nll;        // (N) their −log p(target)
  // host staging of the above (filled on the host, then uploaded / downloaded)
  struct Staging {
    std::vector<int32_t> pos, rows, targets;
    std::vector<float> weight, nll;
  } host;
  // RoPE cos/sin for positions [0, rope.n_pos), built from rope_inv_freq; rope_local likewise
  // for Gemma 3's sliding layers (n_pos 0 when the model has one table)
  RopeTable rope, rope_local;
  std::vector<float> rope_inv_freq, rope_local_inv_freq;
  float rope_mscale = 1.0f;  // the global table's attention factor (LongRoPE, YaRN)
  DeviceArray<float> rope_buf, rope_local_buf;
  const RopeTable& rope_of(const LlamaConfig& c, int64_t l) const { return c.local_rope(l) ? rope_local : rope; }
  DeviceArray<std::byte> mem;  // every buffer above, one allocation
};

// Rows of the LM head's logit chunk for N rows (Activations::C).
int64_t logit_chunk_rows(int64_t N);

// What make_activations allocates for (B, T): the buffers (one allocation) and the RoPE table
// (each rounded up to 64 bytes, as Backend::alloc). The same layout code sizes both: a memory
// plan from this cannot drift from the allocation.
struct ActivationBytes {
  size_t buffers = 0, rope = 0;
  size_t total() const { return buffers + rope; }
};
ActivationBytes activation_bytes(const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T,
                                 ActivationOptions o = {});
// The same before a LoraWeights exists: lora's targets in every layer, rank lora.r.
ActivationBytes activation_bytes(const LlamaConfig& c, const LoraConfig& lora, int64_t B, int64_t T,
                                 ActivationOptions o = {});

// Allocates everything for up to B·T rows (and T ≤ T of this call) in be's memory; lora may be
// null (evaluation without adapter). Sets the current shape to (B, T).
void make_activations(Activations& a, const Backend& be, const LlamaConfig& c, const LoraWeights* lora, int64_t B,
                      int64_t T, ActivationOptions o = {});
// Re-carves the same allocation for another shape with B·T ≤ the capacity (dynamic padding
// changes T per micro-batch); never allocates.
void reshape_activations(Activations& a, const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T);
// Makes the RoPE table cover positions [0, n_pos) for these frequencies (rebuilt only when it
// does not yet); inv_freq_local (Gemma 3's sliding layers) builds the second table, empty = none.
void ensure_rope(Activations& a, const std::vector<float>& inv_freq, int64_t n_pos,
                 const std::vector<float>& inv_freq_local = {}, float mscale = 1.0f);

}  // namespace tpro
