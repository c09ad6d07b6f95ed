// The tiny base model of the adapter and checkpoint harnesses (fuzz_util.h's tiny_config(),
// random F32 weights written once to the scratch folder), and a forward pass that reads every
// LoRA weight a loader produced, so slots that disagree with the buffers show as ASan reports.
#pragma once
#include <memory>

#include "fuzz_util.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "model/model.h"
#include "model/step.h"

namespace tpro::fuzz {

inline const Model& tiny_model() {
  static const Model m = [] {
    const fs::path dir = scratch_dir() / "base";
    write_random_model(dir, tiny_config(), 7, DType::F32);
    return load_model(dir);
  }();
  return m;
}

inline void forward_with(const Model& m, const LoraWeights& lw) {
  static const std::unique_ptr<Backend> be = make_backend("cpu");
  const int32_t toks[2] = {1, int32_t(m.cfg.vocab_size - 1)};
  Activations a;
  make_activations(a, *be, m.cfg, &lw, 1, 2);
  const LoraState state(*be, lw);
  const BatchView in{1, 2, toks, nullptr, nullptr, nullptr};
  StepOptions opt;
  opt.train = false;
  forward(m, &state, a, in, opt);
}

}  // namespace tpro::fuzz
