// Fuzzes resuming from a checkpoint folder: trainer_state.json (step, epoch, loss, batcher
// state), the adapter files, optimizer.safetensors (AdamW moments) and training_graph.json,
// joined in fuzz_checkpoint_util.h's file order by fuzz_util.h's separator line; a part left
// out is a missing file. Loaded as the trainer does (load_checkpoint, then Batcher::restore
// and a few batches). Expected outcome for bad input: tpro::Error.
#include <cstddef>
#include <cstdint>

#include "fuzz_checkpoint_util.h"
#include "train/checkpoint.h"

using namespace tpro;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Model& base = fuzz::tiny_model();
  static const LoraWeights fresh = fuzz::checkpoint_lora(base.cfg);
  const auto parts = fuzz::split_files(data, size, fuzz::kCheckpointFiles.size());
  const fs::path dir = fuzz::fresh_dir("checkpoint-1-epoch0.40-loss2.0000");
  for (size_t i = 0; i < parts.size(); ++i) fuzz::put_file(dir / fuzz::kCheckpointFiles[i], parts[i]);
  try {
    LoraWeights lw = fresh;
    RunLog log;
    const TrainerState st = load_checkpoint(dir, base, lw, &log);
    fuzz::forward_with(base, lw);
    Batcher b = fuzz::checkpoint_batcher();
    b.restore(st.batcher);
    for (int i = 0; i < 4; ++i) {
      (void)b.next();
      b.observe_loss(st.step + i + 1, 1.0);
    }
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
