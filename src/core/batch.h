// One micro-batch as the step reads it: (B, T) token ids with their positions, documents and
// loss mask, as host arrays. data/'s Batcher makes them (data::Batch::view()); model/'s step
// copies them to the device; nothing in between re-describes a batch.
#pragma once
#include <cstdint>

namespace tpro {

struct BatchView {
  int64_t B = 0, T = 0;
  const int32_t* tokens = nullptr;     // (B, T)
  const int32_t* pos = nullptr;        // (B, T) position ids, or null for 0..T-1 in every row
  const int32_t* seg_start = nullptr;  // (B, T) first position of each token's document, or null
  const uint8_t* mask = nullptr;       // (B, T) 1 = token is a trained target; null = all but the first
};

// Trained targets of the batch: Σ mask over positions t ≥ 1 (all of them without a mask).
int64_t count_trained(const BatchView& b);

}  // namespace tpro
