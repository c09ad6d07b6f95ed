// Folding a LoRA adapter into its base (what `tpro merge` writes): for every adapted
// projection W' = W + s·B·A with s = α/r (α/√r for rsLoRA), computed in f32 from the base's
// rows (dequantized when the base is bf16 or quantized) and stored as the requested type.
// DoRA adapters: W' = m / ‖W + s·B·A‖_row ⊙ (W + s·B·A), as PEFT's merge.
// Unadapted tensors are shared with the base unchanged; model_writer.h writes the result.
// An adapter's saved modules (PEFT modules_to_save: embed_tokens, lm_head) replace the base's.
#pragma once
#include "kernels/backend.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

// The merged model (the product runs on be): shares the base's owners, adds its own for the merged matrices.
// type is any WType with a block that fits the columns (F32, BF16, F16 for full precision).
Model merge_lora(const Backend& be, const Model& base, const LoraWeights& lw, WType type);

// The base with the adapter's trained copies of the embedding and LM head in place of its own
// (f32, owned by the result; untied when either differs from a tied base's): what generation,
// perplexity and merging run on. The base itself when the adapter saves no module.
Model with_saved_modules(const Model& base, const LoraWeights& lw);

}  // namespace tpro
