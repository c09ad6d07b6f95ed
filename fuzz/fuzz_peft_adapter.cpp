// Fuzzes PEFT adapter folders: adapter_config.json and adapter_model.safetensors (the input is
// the two files joined by fuzz_util.h's separator line), loaded against the tiny base model
// and run forward. Expected outcome for bad input: tpro::Error (rank, shape, module, layer).
#include <cstddef>
#include <cstdint>

#include "fuzz_model_util.h"
#include "formats/peft_adapter.h"

using namespace tpro;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Model& base = fuzz::tiny_model();
  const auto parts = fuzz::split_files(data, size, 2);
  const fs::path dir = fuzz::fresh_dir("adapter");
  fuzz::put_file(dir / "adapter_config.json", parts[0]);
  if (parts.size() > 1) fuzz::put_file(dir / "adapter_model.safetensors", parts[1]);
  try {
    const LoraWeights lw = load_adapter(dir, base);
    fuzz::forward_with(base, lw);
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
