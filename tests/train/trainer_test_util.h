// The tiny training run the trainer tests share: a byte-level Llama written to a temp folder,
// a short two-part text, small LoRA settings, and an observer that collects the events.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/file.h"
#include "train/byte_level_model.h"
#include "train/trainer.h"

namespace tpro::test {

inline const char* kText =
    "Small models learn small texts. The lamp was lit at dusk. The keeper counted the steps. "
    "Ships passed far out on the water. The logbook was old. Rain ran sideways across the glass. "
    "He made himself a cup of tea when the sun rose. The tower shook in the storm.\n\n\n"
    "A second part begins here. It has its own sentences. They never mix with the first part. "
    "Counting keeps the breath even. The lens turned all night long.";

struct Fixture {
  fs::path dir;
  TrainParams p;
};

inline Fixture make_fixture(const std::string& name) {
  Fixture f;
  f.dir = fs::temp_directory_path() / ("tpro_trainer_" + name);
  fs::remove_all(f.dir);
  write_byte_level_model(f.dir / "model", byte_level_llama(32, 64, 2, 4, 2), 3);
  write_file_atomic(f.dir / "text.txt", kText);
  f.p.model = (f.dir / "model").string();
  f.p.data.raw_text_file = (f.dir / "text.txt").string();
  f.p.output_dir = f.dir.string();
  f.p.lora_name = "run";
  f.p.data.cutoff_len = 48;
  f.p.micro_batch_size = 2;
  f.p.grad_accumulation = 2;
  f.p.lora_rank = 4;
  f.p.lora_alpha = 8;
  f.p.lora_dropout = 0.1;  // exercises the dropout stream in resume
  f.p.training_projection = "all";
  f.p.learning_rate = 2e-3;
  f.p.lr_scheduler_type = "cosine";
  f.p.warmup_steps = 2;
  f.p.epochs = 1;
  f.p.eval_steps = 0;
  f.p.save_steps_under_loss = 0;
  f.p.neft_noise_alpha = 5;  // and the NEFTune stream
  return f;
}

struct Collected {
  std::vector<LogRecord> steps, evals;
  std::vector<std::string> messages, checkpoints;
};

inline TrainObserver collect(Collected& c, std::function<void(const TrainEvent&)> also = nullptr) {
  return [&c, also](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step) c.steps.push_back(e.record);
    if (e.kind == TrainEvent::Kind::Eval) c.evals.push_back(e.record);
    if (e.kind == TrainEvent::Kind::Message) c.messages.push_back(e.text);
    if (e.kind == TrainEvent::Kind::Checkpoint) c.checkpoints.push_back(e.text);
    if (also) also(e);
  };
}

// True when one of the run's messages contains `what`.
inline bool said(const Collected& c, const std::string& what) {
  for (const auto& m : c.messages)
    if (m.find(what) != std::string::npos) return true;
  return false;
}

}  // namespace tpro::test
