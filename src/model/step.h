// One training or evaluation step of the model on a micro-batch: forward through the layers,
// the LM head fused with the masked cross-entropy (chunked over trained rows only), and
// backward to the LoRA gradients. model/forward.cpp and model/backward.cpp implement it and
// read top to bottom like the architecture; backward mirrors forward.
#pragma once
#include <cstdint>

#include "core/cancel.h"
#include "model/activations.h"
#include "model/backend.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

struct StepInputs {
  int64_t B = 0, T = 0;
  const int32_t* tokens = nullptr;     // (B, T)
  const int32_t* pos = nullptr;        // (B, T) position ids, or null for 0..T-1
  const int32_t* seg_start = nullptr;  // (B, T) first position of each token's document, or null
  const uint8_t* mask = nullptr;       // (B, T) 1 = token is a trained target; null = all but the first
  double loss_norm = 1.0;              // trained tokens in the whole accumulated batch
};

struct StepOptions {
  bool train = true;           // dropout, NEFTune and gradients
  uint64_t seed = 0;           // dropout / NEFTune noise for this micro-batch
  double neftune_alpha = 0.0;  // 0 = off
  const CancelFlag* cancel = nullptr;  // polled between layers: a stop ends the step with Cancelled
};

struct StepResult {
  double nll_sum = 0.0;  // Σ −log p over trained tokens (not normalised)
  int64_t n_trained = 0;
};

// Runs forward and the loss; when opt.train, also leaves dL/d(final norm) in a.dln for
// backward(). The loss whose gradient is taken is nll_sum / in.loss_norm.
StepResult forward(const Model& m, const LoraWeights* lw, Activations& a, const StepInputs& in, const StepOptions& opt,
                   const Backend& be = cpu_backend());
// Accumulates LoRA gradients (+=) of the last forward().
void backward(const Model& m, LoraWeights& lw, Activations& a, const StepInputs& in, const StepOptions& opt,
              const Backend& be = cpu_backend());
// Logits (B·T, V) of the last forward (tests, evaluation tools).
void compute_logits(const Model& m, const Activations& a, float* logits, const Backend& be = cpu_backend());

// Shared by forward and backward. One decoder layer's forward from a.layers[l].x_in into
// x_next (backward calls it again to recompute a layer when activations are recomputed).
void layer_forward(const Model& m, const LoraWeights* lw, Activations& a, int64_t l, const StepInputs& in,
                   const StepOptions& opt, const Backend& be, float* x_next);
// A layer computes in bf16 when its projections do: it keeps bf16 copies of their inputs,
// and its attention products run in bf16 too.
inline bool layer_computes_bf16(const LayerWeights& W) { return W.wq.bf16_compute; }
inline AttnShape layer_attn_shape(const LlamaConfig& c, const StepInputs& in, bool bf16) {
  return {in.B, in.T, in.T, c.n_head, c.n_head_kv, c.head_dim, c.sliding_window, bf16};
}
// src in bf16 into dst when bf16 and dst is allocated; returns dst, or null (not converted).
const uint16_t* bf16_copy(const Backend& be, bool bf16, uint16_t* dst, const float* src, int64_t n);
// The dropout stream of one projection of one layer.
LoraDropout lora_dropout_for(const LoraWeights& lw, const StepOptions& opt, int64_t layer, Proj p);

}  // namespace tpro
