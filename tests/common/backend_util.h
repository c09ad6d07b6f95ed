// The backend tests run the model on: the CPU's, made through the registry as the trainer
// makes it (op tests over every compiled-in backend are in tests/kernels/).
#pragma once
#include <memory>

#include "kernels/backend.h"

namespace tpro::test {

inline const Backend& cpu() {
  static const std::unique_ptr<Backend> b = make_backend("cpu");
  return *b;
}

}  // namespace tpro::test
