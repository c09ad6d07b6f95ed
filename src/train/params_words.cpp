// Plain-language words for every training parameter, keyed by its identifier: the label that the
// web form and `tpro train --help` show (Training PRO's wording where it has the control, so its
// users find their settings), whether the form shows it among the essential controls, and the
// slider range where Training PRO draws a slider. Not here: help texts, bounds, defaults and
// groups (params_fields.cpp); tests/train/params_test.cpp checks that every field has an entry.
#include <unordered_map>

#include "train/params.h"

namespace tpro {

namespace {

constexpr bool kEssential = true, kMore = false;

// A field with no slider; the sliders' ranges follow Training PRO's (its rank and alpha start at
// 0, which tpro refuses: the slider starts at the first step instead; the text box next to each
// slider takes any value within the field's bounds).
FieldWords w(const char* name, const char* label, bool essential) { return {name, label, essential, 0, 0, 0}; }
FieldWords slider(const char* name, const char* label, bool essential, double lo, double hi, double step) {
  return {name, label, essential, lo, hi, step};
}

}  // namespace

const std::vector<FieldWords>& field_words() {
  static const std::vector<FieldWords> words = {
      // general
      w("model", "Base model", kEssential),
      w("lora_name", "LoRA name", kEssential),
      w("output_dir", "Output folder", kMore),
      w("always_override", "Override existing files", kEssential),
      w("copy_params_from", "Copy parameters from", kMore),
      w("resume_from_checkpoint", "Resume from checkpoint", kMore),
      w("save_gguf", "Also save as GGUF (llama.cpp)", kMore),
      // lora
      slider("lora_rank", "LoRA rank", kEssential, 4, 1024, 4),
      slider("lora_alpha", "LoRA alpha", kEssential, 4, 2048, 4),
      slider("lora_dropout", "LoRA dropout", kMore, 0, 0.95, 0.025),
      w("use_rslora", "Use rsLoRA (rank-stabilised)", kMore),
      w("use_dora", "Use DoRA (weight-decomposed)", kMore),
      w("loraplus_lr_ratio", "LoRA+ learning-rate ratio", kMore),
      w("lora_modulessave", "Train head (embeddings and LM head)", kMore),
      // targets
      w("training_projection", "Target projections", kMore),
      w("target_modules", "Target modules (explicit list)", kMore),
      // training
      slider("micro_batch_size", "True batch size", kEssential, 1, 128, 1),
      w("batch_size", "Batch size (legacy)", kMore),
      slider("grad_accumulation", "Gradient accumulation", kEssential, 1, 256, 1),
      w("epochs", "Epochs", kEssential),
      w("max_steps", "Maximum steps", kMore),
      w("learning_rate", "Learning rate", kEssential),
      w("lr_scheduler_type", "LR scheduler", kEssential),
      w("warmup_steps", "Warmup steps", kMore),
      slider("warmup_ratio", "Warmup ratio", kMore, 0, 0.2, 0.025),
      w("num_cycles", "Scheduler cycles", kMore),
      w("power", "Polynomial power", kMore),
      w("lr_end", "Final learning rate (polynomial)", kMore),
      // optimizer, precision and memory
      w("optimizer", "Optimizer", kMore),
      w("weight_decay", "Weight decay", kMore),
      w("adam_beta1", "Adam beta1", kMore),
      w("adam_beta2", "Adam beta2", kMore),
      w("adam_epsilon", "Adam epsilon", kMore),
      w("sgd_momentum", "SGD momentum", kMore),
      w("sgd_nesterov", "SGD Nesterov momentum", kMore),
      w("lion_beta1", "Lion beta1", kMore),
      w("lion_beta2", "Lion beta2", kMore),
      w("max_grad_norm", "Gradient clipping (max norm)", kMore),
      slider("neft_noise_alpha", "NEFTune noise scale", kMore, 0, 15, 1),
      w("seed", "Random seed", kMore),
      w("threads", "CPU threads", kMore),
      w("dtype", "Base weight type", kMore),
      w("device", "Device", kMore),
      w("compute_dtype", "Matmul precision", kMore),
      w("pack_weights", "Pack weights for speed", kMore),
      w("quantize", "Quantize the base (QLoRA)", kMore),
      w("quantize_embedding", "Quantize the token embedding", kMore),
      w("quantize_head", "Quantize the output head", kMore),
      w("use_grad_checkpoint", "Use gradient checkpointing", kMore),
      w("ignore_memory_check", "Ignore the memory check", kMore),
      w("memory_limit_gib", "Memory limit (GiB)", kMore),
      // dataset (all kinds)
      slider("cutoff_len", "Maximum context length (cutoff)", kEssential, 32, 4096, 32),
      w("add_bos_token", "Add BOS token", kMore),
      w("add_eos_token", "Add EOS token", kMore),
      w("add_eos_token_type", "EOS placement (text file)", kMore),
      w("train_only_after", "Train only after", kMore),
      w("train_on_inputs", "Train on inputs (JSONL chat)", kMore),
      w("eliminate_long_blocks", "Eliminate cutoff blocks", kMore),
      w("group_by_length", "Group samples by length", kMore),
      w("length_to_sequential", "Switch to sequential order", kMore),
      w("length_to_sequential_at", "Switch at (epoch, step or loss)", kMore),
      w("length_to_sequential_loss_min", "Switch loss range: low end", kMore),
      w("length_pairing_epochs", "Pairing epochs", kMore),
      w("shuffle", "Shuffle blocks", kMore),
      w("pad_to_multiple", "Pad length to a multiple of", kMore),
      w("packing", "Pack short blocks together", kMore),
      w("eval_split_percent", "Evaluation split (%)", kMore),
      w("skip_bad_lines", "Skip bad records", kMore),
      // dataset sources: the form shows them under the dataset source switch, by mode
      w("raw_text_file", "Text file", kEssential),
      w("hard_cut_string", "Hard cut string", kEssential),
      w("min_chars", "Ignore small blocks", kEssential),
      w("precize_slicing_overlap", "Add overlapping blocks", kEssential),
      w("sliding_window", "DEMENTOR long-form learning", kEssential),
      w("dataset", "Dataset", kEssential),
      w("eval_dataset", "Evaluation dataset", kEssential),
      w("format", "Data format", kEssential),
      w("jsonl_dataset", "JSONL dataset", kEssential),
      w("jsonl_eval_dataset", "JSONL evaluation dataset", kEssential),
      w("chat_template_file", "Chat template", kEssential),
      w("chat_template_kwargs", "Chat template variables", kEssential),
      w("hybrid_training", "Hybrid training", kEssential),
      slider("hybrid_data_ratio", "Percentage of dataset used", kEssential, 0, 100, 1),
      slider("hybrid_text_ratio", "Percentage of text file used", kEssential, 0, 100, 1),
      // stops and checkpoints
      slider("stop_at_loss", "Stop at loss", kMore, 0, 3, 0.1),
      slider("stop_at_epoch", "Stop at epoch", kMore, 0, 20, 1),
      w("save_steps", "Save every N steps", kEssential),
      w("save_each_epoch", "Save every epoch", kMore),
      slider("save_steps_under_loss", "Save at 10% loss change", kMore, 0, 3, 0.1),
      w("eval_steps", "Evaluate every N steps", kMore),
      w("save_total_limit", "Keep at most N checkpoints", kMore),
      w("early_stopping_patience", "Early stopping patience", kMore),
      w("early_stopping_threshold", "Early stopping threshold", kMore),
      w("report_to", "Save detailed logs with", kMore),
  };
  return words;
}

void apply_field_words(std::vector<Field>& fields) {
  std::unordered_map<std::string, const FieldWords*> by_name;
  for (const auto& e : field_words()) by_name[e.name] = &e;
  for (auto& f : fields) {
    const auto it = by_name.find(f.name);
    if (it == by_name.end()) {
      f.label = f.name;
      continue;
    }
    f.label = it->second->label;
    f.essential = it->second->essential;
    f.slider_min = it->second->slider_min;
    f.slider_max = it->second->slider_max;
    f.slider_step = it->second->slider_step;
  }
}

}  // namespace tpro
