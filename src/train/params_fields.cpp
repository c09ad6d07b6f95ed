// The field table behind TrainParams: key, type, UI group, help, bounds, choices and the
// accessors, in the order the web form and `tpro train --help` show them. Data keys bind the
// DataOptions inside TrainParams directly. Defaults are the structs' initialisers (Training
// PRO's UI defaults where it has the field).
#include <algorithm>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "model/lora.h"
#include "train/params.h"
#include "train/scheduler.h"

namespace tpro {

namespace {

using json = nlohmann::json;

// Where a field lives: a member of TrainParams, of its DataOptions `data`, or of the length
// schedule inside that. Binding the data pipeline's own struct means no copy between them.
template <typename Params, typename C, typename T>
auto& slot(Params& p, T C::*member) {
  if constexpr (std::is_same_v<C, DataOptions>) return p.data.*member;
  else if constexpr (std::is_same_v<C, LengthSchedule>) return p.data.length_schedule.*member;
  else return p.*member;
}

template <typename C, typename T>
Field make(const char* name, FieldType type, T C::*member, const char* group, const char* help) {
  Field f;
  f.name = name;
  f.type = type;
  f.group = group;
  f.help = help;
  f.get = [member](const TrainParams& p) { return json(slot(p, member)); };
  f.put = [member](TrainParams& p, const json& v) { slot(p, member) = v.get<T>(); };
  return f;
}

Field bounded(Field f, double lo, double hi, bool lo_excl = false, bool hi_excl = false) {
  f.has_min = true;
  f.min = lo;
  f.min_exclusive = lo_excl;
  if (hi < std::numeric_limits<double>::infinity()) {
    f.has_max = true;
    f.max = hi;
    f.max_exclusive = hi_excl;
  }
  return f;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// Int fields are int64_t, or int in DataOptions: their bounds keep every accepted value in range.
template <typename C, typename N>
Field i(const char* n, N C::*m, const char* g, const char* h, double lo, double hi = kInf) {
  return bounded(make(n, FieldType::Int, m, g, h), lo, hi);
}
template <typename C>
Field d(const char* n, double C::*m, const char* g, const char* h, double lo, double hi = kInf, bool lo_excl = false,
        bool hi_excl = false) {
  return bounded(make(n, FieldType::Float, m, g, h), lo, hi, lo_excl, hi_excl);
}
template <typename C>
Field b(const char* n, bool C::*m, const char* g, const char* h) {
  return make(n, FieldType::Bool, m, g, h);
}
template <typename C>
Field s(const char* n, std::string C::*m, const char* g, const char* h) {
  return make(n, FieldType::String, m, g, h);
}
Field c(const char* n, std::string TrainParams::*m, const char* g, const char* h, std::vector<std::string> ch) {
  Field f = make(n, FieldType::Choice, m, g, h);
  f.choices = std::move(ch);
  return f;
}
// A choice held as an enum: names[k] is the key's value for the enumerator k.
template <typename C, typename E>
Field e(const char* n, E C::*m, const char* g, const char* h, std::vector<std::string> names) {
  Field f;
  f.name = n;
  f.type = FieldType::Choice;
  f.group = g;
  f.help = h;
  f.choices = names;
  f.get = [m, names](const TrainParams& p) { return json(names.at(size_t(slot(p, m)))); };
  f.put = [n, m, names](TrainParams& p, const json& v) {
    const auto k = std::find(names.begin(), names.end(), v.get<std::string>());
    if (k == names.end()) fail(n, ": unknown value ", v.dump());  // parse_field_value rejects it first
    slot(p, m) = E(k - names.begin());
  };
  return f;
}
Field l(const char* n, std::vector<std::string> TrainParams::*m, const char* g, const char* h,
        std::vector<std::string> items) {
  Field f = make(n, FieldType::StringList, m, g, h);
  f.choices = std::move(items);
  return f;
}

using P = TrainParams;
using D = DataOptions;
using L = LengthSchedule;

std::vector<Field> general_fields() {
  return {
      s("model", &P::model, "general",
        "The model to adapt: a Hugging Face folder (config.json, *.safetensors, tokenizer.json) or a .gguf file"),
      s("lora_name", &P::lora_name, "general",
        "Name of the new LoRA: the adapter folder created under output_dir"),
      s("output_dir", &P::output_dir, "general", "Folder that holds the adapter folders"),
      b("always_override", &P::always_override, "general",
        "Overwrite an existing adapter of the same name; off = keep training its weights (the rank and"
        " targets must match)"),
      s("copy_params_from", &P::copy_params_from, "general",
        "Adapter folder whose training_parameters.json is loaded first; the config and flags override it"),
      s("resume_from_checkpoint", &P::resume_from_checkpoint, "general",
        "Continue a run exactly (weights, optimizer state, schedule, data order) from a checkpoint folder,"
        " or 'latest' for the adapter's newest checkpoint"),
      b("save_gguf", &P::save_gguf, "general",
        "Also write the adapter as adapter.gguf for llama.cpp (--lora) next to the PEFT files"),
  };
}

std::vector<Field> lora_fields() {
  return {
      i("lora_rank", &P::lora_rank, "lora",
        "How much the adapter can learn: higher = more capacity, a larger file and more memory (4-8 for"
        " style, 128+ to teach new content)", 1, 4096),
      i("lora_alpha", &P::lora_alpha, "lora",
        "How strongly the adapter acts: its update is scaled by alpha / rank (alpha / sqrt(rank) with"
        " rsLoRA); one to two times the rank is a common choice", 1, 16384),
      d("lora_dropout", &P::lora_dropout, "lora",
        "Chance of dropping each LoRA input value during training; helps against overfitting (most runs"
        " keep the default)", 0, 1, false, true),
      b("use_rslora", &P::use_rslora, "lora", "Scale the update by alpha / sqrt(rank) instead of alpha / rank (rank-stabilised LoRA)"),
      b("use_dora", &P::use_dora, "lora",
        "Weight-decomposed LoRA: a trained magnitude per output row times the adapted weight's direction"
        " (PEFT's use_dora; costs one more base product per adapted projection in backward)"),
      d("loraplus_lr_ratio", &P::loraplus_lr_ratio, "lora",
        "The B matrices (and DoRA's magnitudes) learn at learning_rate times this ratio, the A matrices at"
        " learning_rate (16 is the paper's suggestion; 0 = off)", 0, 1e6),
      b("lora_modulessave", &P::lora_modulessave, "lora",
        "Also train full copies of embed_tokens and lm_head (PEFT modules_to_save; 2 x vocab x hidden"
        " more parameters, each with its gradient and optimizer state; no GGUF adapter)"),
  };
}

std::vector<Field> target_fields() {
  return {
      c("training_projection", &P::training_projection, "targets",
        "Projections that get LoRA adapters (Training PRO presets)", {"q-v", "q-k-v", "q-k-v-o", "k-v-down", "all"}),
      l("target_modules", &P::target_modules, "targets",
        "Explicit list of projections (comma-separated); overrides training_projection",
        {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
  };
}

std::vector<Field> training_fields() {
  return {
      i("micro_batch_size", &P::micro_batch_size, "training",
        "Text blocks trained together in one pass: more = steadier learning, but more memory and slower"
        " steps", 1, 4096),
      i("batch_size", &P::batch_size, "training",
        "Training PRO's old batch size: if > 0, grad_accumulation = batch_size / micro_batch_size", 0, 1 << 20),
      i("grad_accumulation", &P::grad_accumulation, "training",
        "Passes averaged into one optimizer step: multiplies the batch size without more memory and evens"
        " out the loss (micro-batches per step)", 1, 65536),
      d("epochs", &P::epochs, "training", "How many times the whole dataset is trained on", 0, 1e6),
      i("max_steps", &P::max_steps, "training",
        "Optimizer steps to run; > 0 overrides epochs for the run length", 0, 1e12),
      d("learning_rate", &P::learning_rate, "training",
        "Peak learning rate (3e-4 is a common start; 1e-2 is very high, 1e-6 very low)", 0, 10, true),
      c("lr_scheduler_type", &P::lr_scheduler_type, "training",
        "How the learning rate changes over the run (Hugging Face and Training PRO FP_* schedules)", scheduler_names()),
      i("warmup_steps", &P::warmup_steps, "training",
        "Linear warmup length in micro-batches (as Training PRO: divided by grad_accumulation, rounded "
        "up); wins over warmup_ratio", 0, 1e12),
      d("warmup_ratio", &P::warmup_ratio, "training",
        "Warmup as a fraction of all steps, used when warmup_steps is 0", 0, 1),
      d("num_cycles", &P::num_cycles, "training",
        "cosine: waves (default 0.5); cosine_with_restarts: restarts (default 1); 0 = default", 0, 1e4),
      d("power", &P::power, "training", "polynomial: decay power", 0, 100, true),
      d("lr_end", &P::lr_end, "training",
        "polynomial: final learning rate (must be below learning_rate)", 0, 10),
  };
}

// Every optimizer name tpro accepts: Training PRO's list plus transformers' Lion names. A note
// says what a name that runs as another does here.
struct OptimizerName {
  const char* name;
  OptimKind kind;
  const char* note;
};
constexpr OptimizerName kOptimizers[] = {
    {"adamw_torch", OptimKind::adamw, ""},
    {"adamw_hf", OptimKind::adamw, ""},
    {"adamw_torch_fused", OptimKind::adamw, ""},
    {"adafactor", OptimKind::adafactor, ""},
    {"adamw_bnb_8bit", OptimKind::adamw8bit, ""},
    {"adamw_8bit", OptimKind::adamw8bit, ""},
    {"paged_adamw_8bit", OptimKind::adamw8bit,
     "paged_adamw_8bit runs as adamw_8bit: paging moves optimizer state between GPU and CPU memory, and on the"
     " CPU it is in CPU memory already"},
    {"sgd", OptimKind::sgd, ""},
    {"adagrad", OptimKind::adagrad, ""},
    {"lion_32bit", OptimKind::lion, ""},
    {"lion_8bit", OptimKind::lion, "lion_8bit runs as lion_32bit: tpro keeps Lion's moment in f32 (no 8-bit Lion)"},
};

std::vector<std::string> optimizer_names() {
  std::vector<std::string> out;
  for (const auto& o : kOptimizers) out.push_back(o.name);
  return out;
}

const OptimizerName& optimizer_entry(const std::string& name) {
  for (const auto& o : kOptimizers)
    if (name == o.name) return o;
  fail("unknown optimizer '", name, "' (hint: one of ", [] {
    std::string all;
    for (const auto& o : kOptimizers) all += (all.empty() ? "" : ", ") + std::string(o.name);
    return all;
  }(), ")");
}

std::vector<Field> advanced_fields() {
  return {
      c("optimizer", &P::optimizer, "advanced",
        "Optimizer for the LoRA weights, by transformers' names: adamw_torch, adamw_hf and adamw_torch_fused are"
        " the same AdamW; adafactor (factored second moments, update clipping); adamw_bnb_8bit, adamw_8bit and"
        " paged_adamw_8bit = AdamW with bitsandbytes' blockwise 8-bit moments; sgd; adagrad; lion_32bit (and"
        " lion_8bit, run with 32-bit state) = Lion", optimizer_names()),
      d("weight_decay", &P::weight_decay, "advanced",
        "Weight decay: decoupled (p -= lr*wd*p) for AdamW, 8-bit AdamW, Adafactor and Lion; added to the gradient"
        " (L2, as torch) for sgd and adagrad", 0, 10),
      d("adam_beta1", &P::adam_beta1, "advanced", "AdamW and 8-bit AdamW beta1", 0, 1, false, true),
      d("adam_beta2", &P::adam_beta2, "advanced", "AdamW and 8-bit AdamW beta2", 0, 1, false, true),
      d("adam_epsilon", &P::adam_epsilon, "advanced", "AdamW and 8-bit AdamW epsilon", 0, 1, true),
      d("sgd_momentum", &P::sgd_momentum, "advanced",
        "sgd: momentum (0 = plain SGD, as transformers' Trainer runs it)", 0, 1),
      b("sgd_nesterov", &P::sgd_nesterov, "advanced", "sgd: Nesterov momentum (needs sgd_momentum > 0)"),
      d("lion_beta1", &P::lion_beta1, "advanced", "Lion: beta1 of the update's interpolation", 0, 1, false, true),
      d("lion_beta2", &P::lion_beta2, "advanced",
        "Lion: beta2 of its moment (transformers passes adam_beta2 instead; set 0.999 to match it)", 0, 1, false,
        true),
      d("max_grad_norm", &P::max_grad_norm, "advanced",
        "Clip the global gradient norm to this value (0 = no clipping)", 0, 1e6),
      d("neft_noise_alpha", &P::neft_noise_alpha, "advanced",
        "Noise on the input embeddings, which can help the adapter generalise (0 = off; 5 is a starting"
        " value)", 0, 100),
      i("seed", &P::seed, "advanced",
        "Random seed (LoRA init, shuffling, dropout, NEFTune)", 0, 4294967295.0),
      i("threads", &P::threads, "advanced", "CPU threads (0 = the physical cores, or OMP_NUM_THREADS when set)", 0, 4096),
      c("dtype", &P::dtype, "advanced",
        "Storage of the base matrices that are not quantized (embedding, LM head, projections): auto keeps the"
        " model's type; LoRA weights, gradients and optimizer state are always f32 (but 8-bit AdamW's moment codes)",
        {"auto", "f32", "bf16", "f16"}),
      c("device", &P::device, "advanced",
        "Where the model runs: cpu (OpenMP threads, oneDNN matmuls); the devices this build has are the choices",
        {"cpu"}),
      c("compute_dtype", &P::compute_dtype, "advanced",
        "Precision of the base matmuls: bf16 rounds their inputs to bf16 and sums in f32 (mixed precision, like"
        " torch.autocast); f32 multiplies in f32; auto = bf16 for a bf16 or quantized base on a CPU with native"
        " bf16 (AMX or AVX512-BF16), else f32",
        {"auto", "f32", "bf16"}),
      b("pack_weights", &P::pack_weights, "advanced",
        "Keep f32 base matrices multiplied in f32 also in the blocked layouts the matmul kernels read (about 16%"
        " faster; twice their memory, skipped when that would exceed a quarter of RAM)"),
      c("quantize", &P::quantize, "advanced",
        "QLoRA: store the frozen q/k/v/o/gate/up/down projections quantized (nf4 = 4-bit NormalFloat with double"
        " quantization; q8_0, q4_0, q4_k, q6_k = ggml blocks); embedding, LM head and norms stay as they are,"
        " and already-quantized GGUF weights keep their type", {"none", "nf4", "q8_0", "q4_0", "q4_k", "q6_k"}),
      c("quantize_embedding", &P::quantize_embedding, "advanced",
        "Store the frozen token embedding as a ggml block type (llama.cpp's --token-embedding-type): the lookup"
        " dequantizes only the rows a batch reads; on a tied model the one tensor serves the LM head too."
        " Not with lora_modulessave; docs/QLORA.md gives the memory saved and the loss change",
        {"none", "q8_0", "q6_k", "q4_k", "q4_0"}),
      c("quantize_head", &P::quantize_head, "advanced",
        "Store the frozen LM head as a ggml block type (llama.cpp's --output-tensor-type; q8_0 or q6_k move the"
        " mean loss by thousandths of a nat, docs/QLORA.md); on a tied model the one tensor serves the"
        " embedding too. Not with lora_modulessave",
        {"none", "q8_0", "q6_k", "q4_k", "q4_0"}),
      b("use_grad_checkpoint", &P::use_grad_checkpoint, "advanced",
        "Recompute each layer's activations in backward instead of keeping them: far less memory, about a third"
        " more compute; switched on by itself when the memory plan does not fit without it"),
      b("ignore_memory_check", &P::ignore_memory_check, "advanced",
        "Start even when the memory plan (weights + adapter + activations + workspace) exceeds the memory"
        " available"),
      d("memory_limit_gib", &P::memory_limit_gib, "advanced",
        "Check the memory plan against this many GiB instead of the memory available (0 = MemAvailable plus what"
        " the run already holds)", 0, 1e6),
  };
}

std::vector<Field> dataset_fields() {
  return {
      i("cutoff_len", &D::cutoff_len, "dataset",
        "Maximum block length in tokens (all dataset kinds); longer blocks are trimmed or eliminated", 16, 1 << 20),
      b("add_bos_token", &D::add_bos_token, "dataset", "Start every block with the BOS token"),
      b("add_eos_token", &D::add_eos_token, "dataset",
        "End every block (or hard-cut block, see add_eos_token_type) with the EOS token"),
      e("add_eos_token_type", &D::add_eos_token_type, "dataset",
        "Raw text: where EOS goes", {"Every Block", "Hard Cut Blocks Only"}),
      s("train_only_after", &D::train_only_after, "dataset",
        "Only train on text after this string in each block (e.g. '### Response:')"),
      b("train_on_inputs", &D::train_on_inputs, "dataset",
        "JSONL chat: train on every token; off = only on the assistant turns"),
      b("eliminate_long_blocks", &D::eliminate_long_blocks, "dataset",
        "Drop blocks longer than cutoff_len instead of trimming them"),
      b("group_by_length", &D::group_by_length, "dataset",
        "Batch blocks of similar length together (less padding)"),
      e("length_to_sequential", &L::to_sequential, "dataset",
        "Switch from length-grouped to sequential order at an epoch, a step, or when the loss falls below"
        " a value", {"never", "epoch", "step", "loss"}),
      d("length_to_sequential_at", &L::at, "dataset",
        "The epoch, step or loss at which length_to_sequential switches (loss: the first step whose loss is"
        " <= this, or within [length_to_sequential_loss_min, this])", 0, 1e12),
      d("length_to_sequential_loss_min", &L::loss_min, "dataset",
        "With length_to_sequential = loss: the low end of the loss range; the order switches at the first"
        " step whose loss is within [this, length_to_sequential_at] (0 = no low end)", 0, 1e12),
      i("length_pairing_epochs", &L::pairing_epochs, "dataset",
        "Epochs of a pairing phase (neighbouring blocks kept together, pairs grouped by length) between the"
        " length-grouped and the sequential order", 0, 1e6),
      b("shuffle", &D::shuffle, "dataset", "Shuffle the block order every epoch (off: original order)"),
      i("pad_to_multiple", &D::pad_to_multiple, "dataset",
        "Round each micro-batch's padded length up to a multiple of this", 1, 1024),
      b("packing", &D::pack_samples, "dataset",
        "Pack several short blocks into one cutoff_len sequence (attention stays inside each block)"),
      d("eval_split_percent", &D::eval_split, "dataset",
        "Hold out this percent of the training blocks for evaluation when no eval dataset is given", 0, 50),
      b("skip_bad_lines", &D::skip_bad_lines, "dataset",
        "Skip unparsable or malformed dataset records with a warning instead of stopping"),
  };
}

std::vector<Field> source_fields() {
  return {
      s("raw_text_file", &D::raw_text_file, "raw_text",
        "Plain-text file, or a folder of .txt files, sliced into blocks"),
      s("hard_cut_string", &D::hard_cut_string, "raw_text",
        "String marking a hard break between unrelated text (escapes such as \\n are interpreted); blocks"
        " never cross it"),
      i("min_chars", &D::min_chars, "raw_text", "Ignore blocks with this many characters or fewer", 0, 1e9),
      b("precize_slicing_overlap", &D::precize_slicing_overlap, "raw_text",
        "Also train on blocks that overlap the sentence-aligned ones, so text cut at a block's edge is"
        " seen whole (never across a hard cut)"),
      b("sliding_window", &D::sliding_window, "raw_text",
        "Sliding-window slicing that helps learn long texts closely (experimental; use few epochs)"),
      s("dataset", &D::dataset, "json", "JSON dataset: a list of records formatted by the format file"),
      s("eval_dataset", &D::eval_dataset, "json", "JSON dataset for evaluation (same format)"),
      s("format", &D::format, "json",
        "Format file: maps a record's keys to a prompt (Training PRO formats/*.json)"),
      s("jsonl_dataset", &D::jsonl_dataset, "jsonl",
        "JSONL chat dataset ({\"messages\": [{\"role\", \"content\"}...]} per line), formatted by the "
        "model's chat template"),
      s("jsonl_eval_dataset", &D::jsonl_eval_dataset, "jsonl", "JSONL chat dataset for evaluation"),
      s("chat_template_file", &D::chat_template_file, "jsonl",
        "Chat template for JSONL rows instead of the tokenizer's: a .jinja file, or a built-in: chatml, alpaca, "
        "llama-2, vicuna (for base models whose tokenizer has none)"),
      make("chat_template_kwargs", FieldType::Object, &D::chat_template_kwargs, "jsonl",
           "Extra chat template variables as a JSON object, e.g. {\"enable_thinking\": false} for Qwen3 (as "
           "transformers' apply_chat_template(**kwargs)); values are bools, numbers or strings"),
      b("hybrid_training", &D::hybrid_training, "hybrid",
        "Train on raw text and a JSON/JSONL dataset together"),
      d("hybrid_data_ratio", &D::hybrid_data_ratio, "hybrid",
        "Percent of the JSON/JSONL dataset used in hybrid training", 0, 100),
      d("hybrid_text_ratio", &D::hybrid_text_ratio, "hybrid",
        "Percent of the raw text used in hybrid training", 0, 100),
  };
}

std::vector<Field> checkpoint_fields() {
  return {
      d("stop_at_loss", &P::stop_at_loss, "checkpoints",
        "Stop once the training loss reaches this value (0 = off; can be changed during training)", 0, 1e3),
      i("stop_at_epoch", &P::stop_at_epoch, "checkpoints",
        "Stop at the end of this epoch (0 = off; can be changed during training)", 0, 1e9),
      i("save_steps", &P::save_steps, "checkpoints",
        "Save a checkpoint every n steps, counted in micro-batches like warmup_steps (as Training PRO: every "
        "ceil(n / grad_accumulation) optimizer steps; 0 = off)", 0, 1e12),
      b("save_each_epoch", &P::save_each_epoch, "checkpoints", "Save a checkpoint at the end of every epoch"),
      d("save_steps_under_loss", &P::save_steps_under_loss, "checkpoints",
        "Save when the loss falls below this value, then again each time it drops 10% below the last saved loss"
        " (Training PRO's \"Save at 10% Loss change\"; 0 = off)", 0, 1e3),
      i("eval_steps", &P::eval_steps, "checkpoints",
        "Evaluate every n steps when there is an eval dataset, counted in micro-batches like warmup_steps (as "
        "Training PRO: every ceil(n / grad_accumulation) optimizer steps; 0 = only at the end)", 0, 1e12),
      i("save_total_limit", &P::save_total_limit, "checkpoints",
        "Keep at most this many step checkpoints, deleting the oldest (0 = keep all)", 0, 1e9),
      i("early_stopping_patience", &P::early_stopping_patience, "checkpoints",
        "Stop when the eval loss has not improved for this many evaluations (every eval_steps) and save the best"
        " adapter seen, whose checkpoint is kept (0 = off; as transformers' EarlyStoppingCallback)", 0, 1e9),
      d("early_stopping_threshold", &P::early_stopping_threshold, "checkpoints",
        "How much lower than the best an eval loss must be to count as an improvement", 0, 1e3),
      c("report_to", &P::report_to, "checkpoints",
        "tensorboard writes TensorBoard event files (loss, learning rate, grad norm, eval"
        " loss, tokens/s) into <adapter folder>/runs/, a new file per run; wandb is not supported",
        {"None", "tensorboard", "wandb"}),
  };
}

std::vector<Field> build_table() {
  std::vector<Field> all;
  for (auto part : {general_fields(), lora_fields(), training_fields(), target_fields(), advanced_fields(),
                    dataset_fields(), source_fields(), checkpoint_fields()})
    for (auto& f : part) all.push_back(std::move(f));
  apply_field_words(all);
  return all;
}

}  // namespace

const std::vector<ParamGroup>& param_groups() {
  static const std::vector<ParamGroup> groups = {
      {"general", "General"},
      {"lora", "LoRA"},
      {"training", "Batch, epochs, learning rate and scheduler"},
      {"targets", "Target projections"},
      {"advanced", "Optimizer, precision and memory"},
      {"dataset", "Dataset (all kinds)"},
      {"raw_text", "Raw text file"},
      {"json", "JSON dataset + format"},
      {"jsonl", "JSONL chat dataset"},
      {"hybrid", "Hybrid training"},
      {"checkpoints", "Stops and checkpoints"},
  };
  return groups;
}

const std::vector<Field>& param_fields() {
  static const std::vector<Field> table = build_table();
  return table;
}

OptimKind optimizer_kind(const std::string& name) { return optimizer_entry(name).kind; }
std::string optimizer_note(const std::string& name) { return optimizer_entry(name).note; }

}  // namespace tpro
