// What fuzz_checkpoint and its seeds share: the run a checkpoint is resumed into (rank 2 on
// q_proj and v_proj of the tiny model) and the batcher over five fixed rows whose state a
// checkpoint's trainer_state.json carries, and the checkpoint's files in input order.
#pragma once
#include <array>
#include <string>

#include "data/batcher.h"
#include "fuzz_model_util.h"
#include "model/lora.h"

namespace tpro::fuzz {

inline constexpr std::array<const char*, 5> kCheckpointFiles = {
    "trainer_state.json", "adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors",
    "training_graph.json"};

inline LoraWeights checkpoint_lora(const LlamaConfig& cfg) {
  LoraConfig lc;
  lc.r = 2;
  lc.alpha = 4.0;
  lc.targets = parse_targets("q,v");
  Rng rng(3);
  return make_lora(cfg, lc, rng);
}

inline Batcher checkpoint_batcher() {
  std::vector<Block> rows;
  for (int i = 0; i < 5; ++i) {
    Block b;
    for (int t = 0; t < 3 + 2 * i; ++t) b.tokens.push_back((t * 5 + i) % 16);
    b.mask.assign(b.tokens.size(), 1);
    b.mask[0] = 0;
    b.kind = BlockKind::kChat;
    b.source = BlockSource::kDataset;
    b.doc = i;
    rows.push_back(std::move(b));
  }
  BatcherConfig bc;
  bc.micro_batch_size = 2;
  bc.group_by_length = true;
  bc.length_schedule.to_sequential = LengthSwitch::kEpoch;
  bc.length_schedule.at = 1;
  bc.seed = 5;
  return Batcher(std::move(rows), bc);
}

}  // namespace tpro::fuzz
