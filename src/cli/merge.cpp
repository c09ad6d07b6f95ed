// `tpro merge`: fold a LoRA adapter (PEFT folder or GGUF adapter) into its base model and
// write the result as a Hugging Face folder (config.json, model.safetensors, the base's
// tokenizer files) or as a GGUF file (the base's vocabulary as tokenizer.ggml.* keys). The
// logic is train/merge_export.h, which the server's export jobs share.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "train/merge_export.h"

namespace tpro::cli {
namespace {

struct MergeArgs {
  std::string model, lora, out, dtype = "f32", device = "cpu";
  bool gguf = false;
};

int run(const MergeArgs& a) {
  const bool gguf = a.gguf || fs::path(a.out).extension() == ".gguf";
  const MergeExportResult r = merge_export({a.model, a.lora, a.out, a.dtype, gguf, a.device});
  std::printf("merged %zu LoRA projections (scale %g) into %s (%s, %s)\n", r.projections, r.scale, a.out.c_str(),
              gguf ? "GGUF" : "Hugging Face folder", a.dtype.c_str());
  return 0;
}

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<MergeArgs>();
  sub->add_option("--model", a->model, "Base model folder or .gguf file")->required();
  sub->add_option("--device", a->device, "Where the model runs (this build: cpu)")->default_val("cpu");
  sub->add_option("--lora", a->lora, "Adapter: PEFT folder or GGUF adapter file")->required();
  sub->add_option("--out", a->out, "Output folder (Hugging Face) or .gguf file")->required();
  sub->add_option("--dtype", a->dtype, "Weight type of the merged model (GGUF also takes q8_0, q4_0, q4_k, q6_k)")
      ->check(CLI::IsMember({"f32", "bf16", "f16", "q8_0", "q4_0", "q4_k", "q6_k"}));
  sub->add_flag("--gguf", a->gguf, "Write a GGUF file (implied by an --out ending in .gguf)");
  return [a] {
    const bool gguf = a->gguf || fs::path(a->out).extension() == ".gguf";
    if (!gguf && a->dtype != "f32" && a->dtype != "bf16" && a->dtype != "f16") {
      fail("--dtype ", a->dtype, " needs --gguf (a Hugging Face folder holds f32, bf16 or f16)");
    }
    return run(*a);
  };
}

TPRO_COMMAND("merge", "Merge a LoRA adapter into its base model (Hugging Face folder or GGUF)", setup);

}  // namespace
}  // namespace tpro::cli
