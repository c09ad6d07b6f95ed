// `tpro convert` for adapters: a PEFT folder (adapter_config.json + adapter_model.safetensors)
// to a GGUF file for llama.cpp --lora, or back. The Q/K row permutation needs the base's head
// counts: PEFT -> GGUF reads them from the base model's config (--base, or the adapter's
// base_model_name_or_path when that is a local path); GGUF -> PEFT uses the base's shape that
// tpro records in its adapters, or --base for files written by other tools.
#pragma once
#include <string>

#include "core/file.h"
#include "io/gguf_value.h"

namespace tpro {

struct ConvertResult {
  std::string from_format, to_format;  // "PEFT" or "GGUF"
  fs::path written;                    // the folder or file written
  int64_t n_pairs = 0;                 // LoRA (A, B) pairs converted
};

// from: a PEFT folder or a GGUF adapter file. to: a folder (PEFT) or a file (GGUF; an existing
// folder gets <to>/adapter.gguf). base: a model folder or .gguf, or empty. type: GGUF tensor
// type (F32, F16 or BF16). Throws with a hint when the base is needed and not found.
ConvertResult convert_adapter(const fs::path& from, const fs::path& to, const fs::path& base,
                              GgmlType type = GgmlType::F32);

}  // namespace tpro
