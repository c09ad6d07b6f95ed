// Adapter conversion; see adapter_convert.h. Both directions go through LoraWeights, so the
// same validation as loading applies and the written files are what the trainer writes.
#include "formats/adapter_convert.h"

#include "core/error.h"
#include "formats/gguf_adapter.h"
#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "io/peft.h"

namespace tpro {

namespace {

LlamaConfig base_config(const fs::path& base, const std::string& recorded, const fs::path& adapter) {
  const fs::path path = base.empty() ? fs::path(recorded) : base;
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) {
    fail("converting ", adapter.string(), " needs the base model's configuration (its head counts decide llama.cpp's ",
         "Q/K row order)", recorded.empty() ? std::string() : cat("; the recorded base '", recorded, "' is not a local path"),
         " (hint: pass --base with the base model folder or .gguf; only its config is read)");
  }
  return load_model_config(path);
}

ConvertResult peft_to_gguf(const fs::path& from, fs::path to, const fs::path& base, GgmlType type) {
  const fs::path cfg_path = from / "adapter_config.json";
  const AdapterConfig ac = parse_adapter_config(read_file(cfg_path), cfg_path.string());
  const LlamaConfig cfg = base_config(base, ac.base_model_name_or_path, from);
  const LoraWeights lw = load_adapter(from, cfg);
  std::error_code ec;
  if (fs::is_directory(to, ec)) to /= "adapter.gguf";
  save_adapter_gguf(to, lw, cfg, ac.base_model_name_or_path, type);
  return {"PEFT", "GGUF", to, int64_t(lw.slots.size())};
}

ConvertResult gguf_to_peft(const fs::path& from, const fs::path& to, const fs::path& base) {
  std::error_code ec;
  if (fs::is_regular_file(to, ec) || to.extension() == ".gguf") {
    fail("cannot write a PEFT adapter to ", to.string(), ": it must be a folder (hint: --to my-lora/)");
  }
  LlamaConfig cfg;
  if (base.empty()) {
    cfg = gguf_adapter_base_config(GgufFile(from));
  } else {
    cfg = load_model_config(base);
  }
  GgufAdapterMeta meta;
  const LoraWeights lw = load_adapter_gguf(from, cfg, &meta);
  save_adapter(to, lw, meta.base_model);
  return {"GGUF", "PEFT", to, int64_t(lw.slots.size())};
}

}  // namespace

ConvertResult convert_adapter(const fs::path& from, const fs::path& to, const fs::path& base, GgmlType type) {
  std::error_code ec;
  if (!fs::exists(from, ec)) fail("cannot convert ", from.string(), ": it does not exist");
  if (is_gguf_file(from)) return gguf_to_peft(from, to, base);
  if (fs::exists(from / "adapter_config.json", ec)) return peft_to_gguf(from, to, base, type);
  fail("cannot convert ", from.string(), ": it is neither a GGUF adapter file nor a PEFT folder with ",
       "adapter_config.json");
}

}  // namespace tpro
