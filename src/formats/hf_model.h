// A Hugging Face Llama-family model folder: config.json plus model.safetensors or its shards
// (model.safetensors.index.json), loaded as Model views into the memory-mapped files (the maps
// are kept alive in Model::owned). Weights stay in their dtype (F32, BF16, F16); norms and
// biases become f32. A GGUF file is formats/gguf_model.h; either by path is formats/load.h.
#pragma once
#include "core/file.h"
#include "model/model.h"

namespace tpro {

// Errors name the file and the tensor (missing, wrong shape or dtype, layers beyond the config).
Model load_hf_model(const fs::path& dir);

}  // namespace tpro
