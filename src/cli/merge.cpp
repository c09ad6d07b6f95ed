// `tpro merge`: fold a LoRA adapter (PEFT folder or GGUF adapter) into its base model and
// write the result as a Hugging Face folder (config.json, model.safetensors, the base's
// tokenizer files) or as a GGUF file (the base's vocabulary as tokenizer.ggml.* keys).
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "formats/gguf_model.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "kernels/backend.h"
#include "model/merge.h"
#include "tokenizer/gguf_vocab.h"

namespace tpro::cli {
namespace {

struct MergeArgs {
  std::string model, lora, out, dtype = "f32", device = "cpu";
  bool gguf = false;
};

constexpr const char* kTokenizerFiles[] = {"tokenizer.json",          "tokenizer_config.json", "special_tokens_map.json",
                                           "chat_template.jinja",     "tokenizer.model",       "generation_config.json"};

void copy_tokenizer_files(const fs::path& base, const fs::path& out) {
  if (!fs::is_directory(base)) {
    log_warn("the base is a GGUF file: ", out.string(), " gets no tokenizer files (hint: copy tokenizer.json and ",
             "tokenizer_config.json from the original Hugging Face model)");
    return;
  }
  for (const char* name : kTokenizerFiles) {
    std::error_code ec;
    if (!fs::exists(base / name)) continue;
    fs::copy_file(base / name, out / name, fs::copy_options::overwrite_existing, ec);
    if (ec) fail("cannot copy ", (base / name).string(), " to ", out.string(), ": ", ec.message());
  }
}

// The vocabulary goes along: copied from a GGUF base, converted from a folder's tokenizer.json.
GgufModelOptions gguf_options(const MergeArgs& a, WType t) {
  GgufModelOptions o;
  o.weights = t;
  o.embeddings = t;
  if (is_gguf_file(a.model)) {
    GgufFile base(a.model);
    o.name = base.get_or<std::string>("general.name", "");
    o.metadata = gguf_tokenizer_metadata(base);
  } else {
    o.name = fs::path(a.model).filename().string() + " + LoRA";
    o.metadata = gguf_vocab_from_hf(a.model, load_model_config(a.model).vocab_size);
  }
  return o;
}

int run(const MergeArgs& a) {
  WType t = WType::F32;
  wtype_from_name(a.dtype, &t);
  const bool gguf = a.gguf || fs::path(a.out).extension() == ".gguf";
  const GgufModelOptions opts = gguf ? gguf_options(a, t) : GgufModelOptions{};
  const Model base = load_model(a.model);
  const LoraWeights lw = load_lora(a.lora, base.cfg);
  const std::unique_ptr<Backend> be = make_backend(a.device);
  const Model merged = merge_lora(*be, base, lw, t);
  if (gguf) {
    save_model_gguf(a.out, merged, opts);
  } else {
    save_model_hf(a.out, merged, t == WType::BF16 ? DType::BF16 : t == WType::F16 ? DType::F16 : DType::F32);
    copy_tokenizer_files(a.model, a.out);
  }
  std::printf("merged %zu LoRA projections (scale %g) into %s (%s, %s)\n", lw.slots.size(), lw.cfg.scale(),
              a.out.c_str(), gguf ? "GGUF" : "Hugging Face folder", a.dtype.c_str());
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
