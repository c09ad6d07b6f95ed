// `tpro convert`: a LoRA adapter from a PEFT folder to a GGUF file for llama.cpp (--lora), or
// from a GGUF adapter back to a PEFT folder. The logic is formats/adapter_convert.h.
#include <cstdio>

#include "cli/command.h"
#include "formats/adapter_convert.h"

namespace tpro::cli {
namespace {

struct ConvertArgs {
  std::string from, to, base, dtype = "f32";
};

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<ConvertArgs>();
  sub->add_option("--from", a->from, "PEFT adapter folder or GGUF adapter file")->required();
  sub->add_option("--to", a->to, "Output: a .gguf file (from PEFT) or a folder (from GGUF)")->required();
  sub->add_option("--base", a->base,
                  "Base model folder or .gguf (only its config is read; needed from PEFT unless the adapter's "
                  "base_model_name_or_path is a local path)");
  sub->add_option("--dtype", a->dtype, "GGUF tensor type")->check(CLI::IsMember({"f32", "f16", "bf16"}));
  return [a] {
    const GgmlType t = a->dtype == "f16" ? GgmlType::F16 : a->dtype == "bf16" ? GgmlType::BF16 : GgmlType::F32;
    const ConvertResult r = convert_adapter(a->from, a->to, a->base, t);
    std::printf("converted %s -> %s: %lld LoRA pairs written to %s\n", r.from_format.c_str(), r.to_format.c_str(),
                static_cast<long long>(r.n_pairs), r.written.string().c_str());
    return 0;
  };
}

TPRO_COMMAND("convert", "Convert a LoRA adapter between PEFT (safetensors) and GGUF (llama.cpp --lora)", setup);

}  // namespace
}  // namespace tpro::cli
