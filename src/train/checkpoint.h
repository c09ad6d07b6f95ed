// Checkpoints for exact resume: the adapter (PEFT files), the optimizer's state (AdamW moments,
// 8-bit codes and scales, ... under their own names), and the trainer
// state (optimizer step, batcher state with data order and RNG, loss-threshold position,
// the run log so far) in one folder named for its step, epoch and loss, written atomically
// (filled under a temporary name, then renamed). Resuming restores all of it, so N + N steps
// give the same losses as 2N straight.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/file.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/run_log.h"

namespace tpro {

struct TrainerState {
  int64_t step = 0;              // optimizer steps completed, counting those of the runs this one continues
  double epoch = 0.0;            // fractional epochs completed, likewise
  // Where this run started when it continues an existing adapter (Training PRO's
  // checkpoint_offset and epoch_offset): the steps and epochs logged before it. The run's own
  // schedule, save/eval intervals and stop_at_epoch count from here (step - step_offset).
  int64_t step_offset = 0;
  double epoch_offset = 0.0;
  double loss = 0.0;             // loss of the last step
  double loss_threshold = 0.0;   // next loss-threshold checkpoint (0 = mode off)
  nlohmann::json batcher;        // Batcher::state()
  nlohmann::json extra = nlohmann::json::object();
};

// "checkpoint-120-epoch1.50-loss1.2345"
std::string checkpoint_name(int64_t step, double epoch, double loss);

// Writes <adapter_dir>/<checkpoint_name>/ with adapter_model.safetensors, adapter_config.json,
// optimizer.safetensors, trainer_state.json, training_graph.json/training_log.json, and
// training_parameters.json (params_json), and training_prompt.json when `training_prompt` is
// not null (Training PRO writes it into each checkpoint too). Returns the folder.
fs::path save_checkpoint(const fs::path& adapter_dir, const LoraWeights& lw, const TrainerState& st,
                         const RunLog& log, const nlohmann::json& params_json, const std::string& base_model,
                         const nlohmann::ordered_json& training_prompt = nlohmann::ordered_json());

// Loads a checkpoint written by save_checkpoint into lw (params and the state of lw.optim, which
// must be the optimizer the checkpoint was written with) and returns its state.
TrainerState load_checkpoint(const fs::path& dir, const Model& model, LoraWeights& lw, RunLog* log);

// Written last into each checkpoint: {"files": {name: bytes}}. A folder whose manifest is
// missing (older tpro: then the four files a resume reads must exist) or disagrees with the
// files is incomplete and never a resume point.
inline constexpr const char* kCheckpointManifest = "checkpoint_manifest.json";
inline constexpr const char* kDeletingTag = ".deleting-";  // "<checkpoint>.deleting-<pid>" while pruned
// "" when dir is a complete checkpoint, else why not ("optimizer.safetensors is missing").
std::string checkpoint_incomplete(const fs::path& dir);

// Complete checkpoint folders of adapter_dir, oldest (lowest step) first.
std::vector<fs::path> list_checkpoints(const fs::path& adapter_dir);
// The checkpoint with the highest step in adapter_dir, or empty when there is none.
fs::path latest_checkpoint(const fs::path& adapter_dir);
// The step in a checkpoint folder's name ("checkpoint-120-..." -> 120), or -1 for another name.
int64_t checkpoint_step(const fs::path& dir);
// Removes the oldest checkpoints until at most `keep` remain (keep <= 0: keep all); returns
// the folders removed. `protect` (early stopping's best checkpoint) is never removed nor counted.
std::vector<fs::path> prune_checkpoints(const fs::path& adapter_dir, int64_t keep, const fs::path& protect = {});

// Leftovers of killed runs in adapter_dir: "<name>.tmp-<pid>" (unfinished atomic writes and
// checkpoints) and "<name>.deleting-<pid>" (interrupted pruning) are removed; "<name>.old-<pid>"
// is removed, or renamed back to <name> when that is missing (killed mid-replacement). Call
// only while holding the folder's lock. Returns what it did, one entry per item.
std::vector<std::string> clean_stale_temporaries(const fs::path& adapter_dir);

}  // namespace tpro
