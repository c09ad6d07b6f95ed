// Text generation with a KV cache, with or without a LoRA adapter: the prompt is fed in
// chunks through the training step's own decoder layer (layer_forward with a KvCache), then
// one token at a time.
// Sampling: greedy (temperature 0), temperature, top-k, top-p (nucleus), repetition penalty.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "core/rng.h"
#include "model/activations.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/step.h"

namespace tpro {

struct SamplingParams {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these
};

class Generator {
 public:
  Generator(const Backend& be, const Model& m, const LoraWeights* lora, int64_t max_ctx);
  // Appends n tokens to the context and returns the logits (V) after the last one.
  const float* feed(const int32_t* tokens, int64_t n);
  void reset() { pos_ = 0; }
  int64_t position() const { return pos_; }
  // Generates after `prompt`; on_token (may be null) sees each new id, returns false to stop.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, const SamplingParams& sp,
                                const std::function<bool(int32_t)>& on_token = nullptr);

 private:
  const Model& m_;
  const LoraWeights* lora_;           // the adapter's host image (its layout)
  std::optional<LoraState> state_;    // the adapter on the device
  int64_t max_ctx_, pos_ = 0, chunk_;
  Activations acts_;                     // one prompt chunk, layers sharing their buffers
  DeviceArray<float> kcache_, vcache_;  // (L, max_ctx, KV) each
  DeviceArray<float> logits_dev_;       // (V)
  std::vector<float> logits_;           // (V) on the host
  std::vector<int32_t> positions_;
};

// Picks the next token from logits (V) with the sampling rules; `history` feeds the
// repetition penalty. Modifies logits in place.
int32_t sample_token(float* logits, int64_t V, const SamplingParams& sp, const std::vector<int32_t>& history, Rng& rng);

}  // namespace tpro
