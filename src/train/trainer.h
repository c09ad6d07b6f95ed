// A whole training run from TrainParams: load the base model and tokenizer, build the dataset
// and batcher, create or resume the LoRA, then the step loop with its schedule, evaluation,
// checkpoints, stops and logs, and finally the adapter folder (PEFT files, training_parameters,
// training_log/graph JSON and PNG). The CLI and the web server both drive it; they watch it
// through TrainEvents and steer it through a RunControl.
#pragma once
#include <functional>
#include <string>

#include "core/file.h"
#include "data/options.h"
#include "train/params.h"
#include "train/run_control.h"
#include "train/memory_plan.h"
#include "train/run_log.h"

namespace tpro {

struct TrainEvent {
  enum class Kind { Message, Step, Eval, Checkpoint, Done };
  Kind kind = Kind::Message;
  std::string text;        // Message/Checkpoint/Done: a human-readable line (or the folder)
  LogRecord record;        // Step/Eval
  int64_t total_steps = 0;  // the step the run ends at (counting those of a continued adapter)
  int64_t first_step = 0;   // Step: the step this run started from (resume or continued adapter)
  double first_elapsed_s = 0;  // Step: the elapsed time logged at first_step
};
using TrainObserver = std::function<void(const TrainEvent&)>;

struct TrainSummary {
  int64_t steps = 0, total_steps = 0;
  double final_loss = 0.0;
  std::string stop_reason;  // "completed", "stop requested", "loss 1.20 <= stop_at_loss 1.5", ...
  fs::path adapter_dir;
  bool saved = false;    // the adapter was written (false: stopped before the first step ended)
  bool stopped = false;  // ended by a stop request (signal, control file, HTTP)
};

// The data pipeline's options of a run: p.data with the run's seed.
DataOptions data_options_from(const TrainParams& p);

// Validates p, runs the job and writes the adapter. Errors in inputs throw tpro::Error before
// any step runs; a stop (signal, control file, HTTP) ends the loop and still saves, and a stop
// while loading, slicing, allocating or during the first step returns at once with nothing
// written (saved = false). The adapter folder is locked for the run (a second writer is
// refused naming this pid); leftovers of killed runs in it are removed first. always_override
// moves the previous adapter aside only after every input has been checked, restores it when
// the run fails before saving anything, and removes it once the new adapter is saved. A NaN or
// infinite loss or gradient ends the run with an Error naming the step and the likely cause,
// before any non-finite value reaches the weights or a file.
TrainSummary run_training(const TrainParams& p, RunControl& ctl, const TrainObserver& observer);

// The memory plan run_training would make for p, before starting (the server shows it before
// Start): the model's weights are mapped, not converted, and the dataset is built to find the
// longest row batched. Nothing is written. Input errors throw as run_training's do.
struct MemoryPlanReport {
  MemoryChoice choice;
  std::string refusal;  // run_training's error when the plan does not fit (and is not ignored), else ""
};
MemoryPlanReport plan_training_memory(const TrainParams& p, RunControl& ctl);

}  // namespace tpro
