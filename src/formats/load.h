// Models and LoRA adapters by what the path is, the one entry point every subcommand and the
// server use: a model is a Hugging Face folder (hf_model.h) or a GGUF file (gguf_model.h); an
// adapter is a PEFT folder (peft_adapter.h) or a GGUF LoRA file (gguf_adapter.h). A path that
// is neither is an error naming both accepted forms.
#pragma once
#include "core/file.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

// A GGUF file (by its magic, or a .gguf name) or else a Hugging Face folder.
Model load_model(const fs::path& path);
// The configuration alone, of a model folder (config.json) or a GGUF file (its metadata and
// tensor shapes; no tensor data is read).
LlamaConfig load_model_config(const fs::path& path);

enum class LoraFormat { Peft, Gguf };
// Peft for a folder holding adapter_config.json, Gguf for a file starting with the GGUF magic;
// throws for anything else (missing, a folder without adapter_config.json, another file),
// naming both forms. Reads at most the file's first 4 bytes.
LoraFormat lora_format(const fs::path& path);
// "a PEFT adapter folder (adapter_config.json + adapter_model.safetensors or adapter_model.bin) or a GGUF LoRA file"
const char* lora_forms();

// The adapter at `path` (lora_format) for a base of configuration `base`; every check of the
// format's own loader applies (rank, shapes, layers, architecture). Moments and grads zeroed.
LoraWeights load_lora(const fs::path& path, const LlamaConfig& base);
LoraWeights load_lora(const fs::path& path, const Model& base);

}  // namespace tpro
