// Saving and loading LoRA adapters as PEFT folders (each file written atomically, tensors
// first; the tensors' metadata records rank and targets so a config and tensors from two
// different saves are refused), with validation that names the file, the tensor and the
// mismatch: rank, shape, unknown module, layer beyond the model, missing tensors.
#pragma once
#include <string>

#include "core/file.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

// Writes dir/adapter_model.safetensors then dir/adapter_config.json, each atomically (into an
// existing folder, or creating it). Extra files of the folder are left alone. Not a folder
// rename: the trainer's output folder also holds checkpoints and logs.
void save_adapter(const fs::path& dir, const LoraWeights& lw, const std::string& base_model);
// Loads a PEFT adapter for `model`; moments and grads are zeroed. The tensors come from
// adapter_model.safetensors, else from adapter_model.bin (torch.save, as text-generation-webui's
// Training PRO and older PEFT write it; read by io/torch_pickle.h, never unpickled by Python).
LoraWeights load_adapter(const fs::path& dir, const Model& model);
// The same against a configuration alone (converting adapters needs no weights).
LoraWeights load_adapter(const fs::path& dir, const LlamaConfig& cfg);

}  // namespace tpro
