// PEFT LoRA adapter folders: adapter_config.json (classic keys only, so every PEFT version,
// text-generation-webui and llama.cpp's converter read it) and the tensor naming of
// adapter_model.safetensors: base_model.model.model.layers.N.<module>.lora_A.weight (r, in)
// and lora_B.weight (out, r), with DoRA (use_dora, written only when true) also
// ...<module>.lora_magnitude_vector (out). Mapping onto model layers is formats/peft_adapter's job.
#pragma once
#include <string>
#include <vector>

#include "core/file.h"

namespace tpro {

struct AdapterConfig {
  int64_t r = 8;
  double lora_alpha = 16.0;
  double lora_dropout = 0.0;
  std::vector<std::string> target_modules;  // "q_proj", ...
  bool use_rslora = false;
  bool use_dora = false;
  std::string init_lora_weights;  // "" (PEFT's default, true) or the method a string names
  std::string base_model_name_or_path;
  // Modules trained in full and saved whole (Training PRO's "Train Head"): "embed_tokens",
  // "lm_head". Written only when not empty; any other name is refused on reading.
  std::vector<std::string> modules_to_save;
};

std::string adapter_config_json(const AdapterConfig& c);
AdapterConfig parse_adapter_config(const std::string& text, const std::string& origin);

// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"; hf_prefix is where the
// model's layers live ("model.", or "model.language_model." in a Gemma 3 multimodal checkpoint).
std::string peft_tensor_name(int64_t layer, const std::string& module, bool is_a,
                             const std::string& hf_prefix = "model.");

// "base_model.model.model.layers.3.self_attn.q_proj.lora_magnitude_vector" (DoRA).
std::string peft_magnitude_name(int64_t layer, const std::string& module, const std::string& hf_prefix = "model.");
// Parses a DoRA magnitude name into (layer, module); also accepts the ".default" adapter infix
// and the ".weight" suffix of PEFT's in-memory names. False when it is not one.
bool parse_peft_magnitude_name(const std::string& name, int64_t* layer, std::string* module);

// The tensor of a module in modules_to_save, as PEFT's get_peft_model_state_dict names it (the
// ModulesToSaveWrapper's path, adapter name removed): "embed_tokens" ->
// "base_model.model.model.embed_tokens.weight", "lm_head" -> "base_model.model.lm_head.weight".
std::string peft_saved_module_tensor_name(const std::string& module);
// The module ("embed_tokens", "lm_head") such a tensor name holds, or "" for another name.
std::string parse_peft_saved_module_tensor_name(const std::string& name);

// Parses a PEFT tensor name into (layer, module like "self_attn.q_proj", is_a). Accepts the
// ".default" adapter-name infix older PEFT versions saved, and the layers under model.,
// model.language_model. or language_model.model. False when it is not a LoRA name.
bool parse_peft_tensor_name(const std::string& name, int64_t* layer, std::string* module, bool* is_a);

}  // namespace tpro
