// Loading by what the path is; see load.h.
#include "formats/load.h"

#include "core/error.h"
#include "formats/gguf_adapter.h"
#include "formats/gguf_model.h"
#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/peft_adapter.h"
#include "io/gguf.h"

namespace tpro {

Model load_model(const fs::path& path) {
  if (is_gguf_file(path) || path.extension() == ".gguf") return load_gguf_model(path);
  return load_hf_model(path);
}

LlamaConfig load_model_config(const fs::path& path) {
  if (is_gguf_file(path)) return gguf_model_config(GgufFile(path));
  return load_hf_config(path);
}

const char* lora_forms() {
  return "a PEFT adapter folder (adapter_config.json + adapter_model.safetensors or adapter_model.bin) or a GGUF LoRA "
         "file";
}

LoraFormat lora_format(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) fail(path.string(), ": not found (hint: a LoRA adapter is ", lora_forms(), ")");
  if (fs::is_directory(st)) {
    if (fs::exists(path / "adapter_config.json", ec)) return LoraFormat::Peft;
    fail((path / "adapter_config.json").string(), ": not found, so ", path.string(), " is not a PEFT adapter folder",
         " (hint: a LoRA adapter is ", lora_forms(), ")");
  }
  if (is_gguf_file(path)) return LoraFormat::Gguf;
  const std::string name = path.filename().string();
  const bool peft_file = name == "adapter_config.json" || name == "adapter_model.safetensors" ||
                         name == "adapter_model.bin";
  fail(path.string(), ": not a GGUF file (it does not start with the GGUF magic) and not a folder (hint: a LoRA ",
       "adapter is ", lora_forms(), peft_file ? "; pass the folder that holds this file" : "", ")");
}

LoraWeights load_lora(const fs::path& path, const LlamaConfig& base) {
  switch (lora_format(path)) {
    case LoraFormat::Gguf: return load_adapter_gguf(path, base);
    case LoraFormat::Peft: break;
  }
  return load_adapter(path, base);
}

LoraWeights load_lora(const fs::path& path, const Model& base) { return load_lora(path, base.cfg); }

}  // namespace tpro
