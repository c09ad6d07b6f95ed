// Hugging Face config.json for the Llama family (LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM; SmolLM and TinyLlama are Llama) parsed into LlamaConfig (model/config.h),
// and written back for models tpro creates. Anything tpro would compute wrongly (another
// architecture, an activation other than SiLU, an unknown rope_scaling type) is an Error, not
// a guess.
#pragma once
#include <string>

#include "core/file.h"
#include "model/config.h"

namespace tpro {

LlamaConfig parse_hf_config(const std::string& json_text, const std::string& origin);
LlamaConfig load_hf_config(const fs::path& model_dir);  // <dir>/config.json
std::string hf_config_json(const LlamaConfig& c);        // a config.json transformers loads

}  // namespace tpro
