// Fuzzes the safetensors reader: the 8-byte header length, the JSON header (dtypes, shapes,
// data_offsets, __metadata__) and the bounds of every tensor against the file. A valid file's
// tensors are read byte by byte, so an offset the validation let through past the mapping is
// an ASan report. Expected outcome for bad input: tpro::Error.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "io/safetensors.h"

using namespace tpro;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path path = fuzz::scratch_dir() / "model.safetensors";
  fuzz::put_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    SafeTensorsFile f(path);
    unsigned sum = 0;
    for (const std::string& name : f.names()) {
      const TensorInfo& info = f.info(name);
      const TensorView v = f.view(name);
      const auto* p = static_cast<const uint8_t*>(v.data);
      for (size_t i = 0; i < v.nbytes(); ++i) sum += p[i];
      sum += unsigned(info.end - info.begin);
    }
    for (const auto& [k, v] : f.metadata()) sum += unsigned(k.size() + v.size());
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
