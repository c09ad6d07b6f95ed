// The backends compiled into this build, by device name; see backend.h.
#include "kernels/backend.h"

#include "core/error.h"
#include "kernels/cpu/backend.h"

namespace tpro {

std::vector<std::string> compiled_backends() { return {"cpu"}; }

std::unique_ptr<Backend> make_backend(std::string_view device) {
  if (device == "cpu") return std::make_unique<CpuBackend>();
  std::string have;
  for (const auto& d : compiled_backends()) have += (have.empty() ? "" : ", ") + d;
  fail("unknown device '", device, "': this build runs on ", have, " (hint: device: cpu)");
}

}  // namespace tpro
