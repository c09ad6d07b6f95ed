// One training or evaluation step of the model on a micro-batch: forward through the layers,
// the LM head fused with the masked cross-entropy (chunked over trained rows only), and
// backward to the LoRA gradients. Everything runs on the Backend the activations belong to.
// model/forward.cpp and model/backward.cpp implement it and read top to bottom like the
// architecture; backward mirrors forward. The same decoder layer serves generation (KvCache).
#pragma once
#include <cstdint>

#include "core/batch.h"
#include "core/cancel.h"
#include "model/activations.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

struct StepOptions {
  bool train = true;           // dropout, NEFTune and gradients
  uint64_t seed = 0;           // dropout / NEFTune noise for this micro-batch
  double neftune_alpha = 0.0;  // 0 = off
  double loss_norm = 1.0;      // trained tokens in the whole accumulated batch
  const CancelFlag* cancel = nullptr;  // polled between layers: a stop ends the step with Cancelled
};

struct StepResult {
  double nll_sum = 0.0;  // Σ −log p over trained tokens (not normalised)
  int64_t n_trained = 0;
};

// Runs forward and the loss; when opt.train, also leaves dL/d(final norm) in a.dln for
// backward(). The loss whose gradient is taken is nll_sum / opt.loss_norm.
StepResult forward(const Model& m, const LoraState* lw, Activations& a, const BatchView& in, const StepOptions& opt);
// Accumulates LoRA gradients (+=) of the last forward(), and those of the trained embedding and
// LM head copies when the adapter has them.
void backward(const Model& m, LoraState& lw, Activations& a, const BatchView& in, const StepOptions& opt);
// Logits (B·T, V) of the last forward, into host memory (tests, evaluation tools); with the
// adapter's trained LM head when lw has one.
void compute_logits(const Model& m, const Activations& a, float* logits, const LoraState* lw = nullptr);

// Keys and values of the positions seen so far, for generation: (L, capacity, KV) each on the
// device; positions [0, len) are filled.
struct KvCache {
  float* k = nullptr;
  float* v = nullptr;
  int64_t capacity = 0, len = 0;
};

// One decoder layer's forward from a.layers[l].x_in into x_next, on the batch already in a
// (upload_batch). Training and evaluation: kv null. Generation: the new tokens' keys and values
// go to kv at [len, len + T) and attention reads all of kv (B must be 1). Backward calls it
// again to recompute a layer when activations are recomputed.
void layer_forward(const Model& m, const LoraState* lw, Activations& a, int64_t l, const StepOptions& opt,
                   float* x_next, KvCache* kv = nullptr);
// Copies the batch's tokens, positions and documents to the device, and widens the RoPE table
// to its positions (+ pos_offset: generation's tokens come after the cache).
void upload_batch(const Model& m, Activations& a, const BatchView& in);
// The token embeddings of the batch already uploaded into a.layers[0].x_in: the rows, the
// model's embedding scale (Gemma) and NEFTune's noise when training, in the model's order. An
// adapter that trains the embedding (modules_to_save) supplies its rows.
void embed_tokens(const Model& m, Activations& a, int64_t N, int64_t T, const StepOptions& opt,
                  const LoraState* lw = nullptr);
// The attention of layer `layer`: heads, its sliding window, score scale and soft-cap.
AttnShape attn_shape(const LlamaConfig& c, int64_t layer, int64_t B, int64_t Tq, int64_t Tk, bool bf16);
// The adapter operands of one projection of one layer (its A, B, gradients, scale and dropout
// stream; u is where forward saves dropout(x)·Aᵀ), or false when it has no adapter.
bool lora_operands(const LoraState* lw, const StepOptions& opt, int64_t layer, Proj p, float* u, LoraOperands* out);

}  // namespace tpro
