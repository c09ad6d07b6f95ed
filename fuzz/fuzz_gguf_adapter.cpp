// Fuzzes GGUF LoRA adapters (llama.cpp's layout plus tpro.* keys): general.type, adapter.*,
// the architecture, tensor names, pairing and shapes, loaded against the tiny base model's
// configuration and run forward; and the base configuration a tpro adapter records.
// Expected outcome for bad input: tpro::Error.
#include <cstddef>
#include <cstdint>

#include "fuzz_model_util.h"
#include "formats/gguf_adapter.h"

using namespace tpro;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Model& base = fuzz::tiny_model();
  const fs::path path = fuzz::scratch_dir() / "adapter.gguf";
  fuzz::put_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    GgufAdapterMeta meta;
    const LoraWeights lw = load_adapter_gguf(path, base.cfg, &meta);
    fuzz::forward_with(base, lw);
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  try {
    (void)gguf_adapter_base_config(GgufFile(path));
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
