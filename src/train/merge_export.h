// Folding a LoRA adapter into its base and writing the result, shared by `tpro merge` and the
// server's export jobs: a Hugging Face folder (config.json, model.safetensors, the base's
// tokenizer files) or a GGUF file (the base's vocabulary as tokenizer.ggml.* keys). Not here:
// the maths (model/merge.h), the file layouts (formats/model_writer.h), where outputs may go.
#pragma once
#include <functional>
#include <string>

#include "core/file.h"

namespace tpro {

struct MergeExport {
  fs::path model;  // base: a Hugging Face folder or a .gguf file
  fs::path lora;   // a PEFT folder or a GGUF adapter file
  fs::path out;    // the folder (written into as it is) or the .gguf file (written atomically)
  std::string dtype = "f32";  // f32, bf16, f16; GGUF also q8_0, q4_0, q4_k, q6_k
  bool gguf = false;
  std::string device = "cpu";
};

struct MergeExportResult {
  size_t projections = 0;  // LoRA projections folded in
  double scale = 0;        // α/r (α/√r for rsLoRA)
  bool base_tokenizer_copied = false;  // false for a GGUF base written as a folder
};

// The stages are said through stage(done, total, what) before each starts (4 in all), so a
// caller can show progress and stop between them by throwing from it. Throws Error for a
// dtype the output cannot hold, and as the loaders and writers do.
MergeExportResult merge_export(const MergeExport& m,
                               const std::function<void(int done, int total, const std::string& what)>& stage = {});

}  // namespace tpro
