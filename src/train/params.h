// Every training parameter in one struct and one field table, shared by the CLI (params_cli.h),
// YAML run configs, the web server's JSON and the adapter's training_parameters.json. Keys use
// text-generation-webui Training PRO's names wherever it has the parameter (lora_rank,
// micro_batch_size, grad_accumulation, precize_slicing_overlap, ...), so its "Copy parameters
// from" can read our folders and copy_params_from() can read its folders.
// Not here: what the values do (data/, train/ trainer) and the CLI11 binding (params_cli.h).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "data/options.h"
#include "train/scheduler.h"

namespace tpro {
enum class OptimKind;  // model/lora.h
}

namespace YAML {
class Node;
}

namespace tpro {

// DataOptions' defaults, except that Training PRO pads micro-batches to a multiple of 8.
inline DataOptions train_data_defaults() {
  DataOptions o;
  o.pad_to_multiple = 8;
  return o;
}

struct TrainParams {
  // general
  std::string model;                 // base model folder (HF) or .gguf file
  std::string lora_name;             // adapter folder name under output_dir
  std::string output_dir = "loras";  // parent folder of adapters
  bool always_override = false;      // replace an existing adapter instead of resuming it
  std::string copy_params_from;      // adapter folder whose training_parameters.json is loaded first
  std::string resume_from_checkpoint;  // checkpoint folder or "latest": exact resume
  bool save_gguf = false;            // also write adapter.gguf (llama.cpp --lora) next to the PEFT files
  // lora
  int64_t lora_rank = 32;
  int64_t lora_alpha = 64;
  double lora_dropout = 0.05;
  bool use_rslora = false;  // scale alpha / sqrt(r) instead of alpha / r
  double loraplus_lr_ratio = 0.0;  // LoRA+: B (and 1-D) parameters at lr·ratio; 0 = off
  bool use_dora = false;           // DoRA: a trained magnitude per output row (PEFT's use_dora)
  bool lora_modulessave = false;  // Training PRO's "Train Head": train embed_tokens and lm_head whole (modules_to_save)
  // targets
  std::string training_projection = "q-v";  // q-v, q-k-v, q-k-v-o, k-v-down, all
  std::vector<std::string> target_modules;  // explicit list; overrides training_projection
  // training: batch, epochs, learning rate, scheduler
  int64_t micro_batch_size = 4;  // "True Batch Size": blocks per forward pass
  int64_t batch_size = 0;        // legacy: > 0 sets grad_accumulation = batch_size / micro_batch_size
  int64_t grad_accumulation = 1;
  double epochs = 3;
  int64_t max_steps = 0;  // optimizer steps; > 0 overrides epochs for the run length
  double learning_rate = 3e-4;
  std::string lr_scheduler_type = "linear";
  int64_t warmup_steps = 100;  // counted in micro-batches, like Training PRO (see optimizer_warmup_steps)
  double warmup_ratio = 0.0;
  double num_cycles = 0.0;  // 0 = scheduler default
  double power = 1.0;
  double lr_end = 1e-7;
  // advanced
  std::string optimizer = "adamw_torch";
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double sgd_momentum = 0.0;  // torch.optim.SGD momentum (Trainer's "sgd" uses torch's default 0)
  bool sgd_nesterov = false;
  double lion_beta1 = 0.9, lion_beta2 = 0.99;  // the Lion paper's (and bitsandbytes') defaults
  double max_grad_norm = 1.0;  // 0 = no clipping
  double neft_noise_alpha = 0.0;
  int64_t seed = 42;
  int64_t threads = 0;  // 0 = the physical cores (apply_thread_count)
  std::string dtype = "auto";     // storage of unquantized base matrices: auto (as loaded), f32, bf16, f16
  std::string quantize = "none";  // quantize frozen base projections on load (QLoRA: nf4, ...)
  std::string quantize_embedding = "none";  // store the token embedding as q8_0, q6_k, q4_k or q4_0
  std::string quantize_head = "none";       // store the LM head so (a tied model: one tensor for both)
  std::string device = "cpu";  // the Backend training runs on (make_backend)
  std::string compute_dtype = "auto";  // matmul precision: auto, f32, bf16 (see BaseWeightOptions)
  bool pack_weights = true;  // blocked weight copies for the matmul kernels (see prepare_weights())
  bool use_grad_checkpoint = false;  // recompute activations per layer in backward (switched on when the memory plan needs it)
  bool ignore_memory_check = false;  // start even when the memory plan exceeds the memory available
  double memory_limit_gib = 0.0;     // plan against this many GiB (0 = MemAvailable + what the run already holds)
  std::string report_to = "None";    // "tensorboard": event files in <adapter>/runs/ (Training PRO's choices)
  // dataset, raw text, JSON + format, JSONL chat, hybrid: the data pipeline's own options, each
  // bound to its key in params_fields.cpp (eval_split_percent -> eval_split, packing ->
  // pack_samples, length_to_sequential[_at] -> length_schedule). The data seed is `seed` above
  // (data_options_from in trainer.h); cancel is the run's stop flag.
  DataOptions data = train_data_defaults();
  // stops and checkpoints
  double stop_at_loss = 0.0;
  int64_t stop_at_epoch = 0;
  int64_t save_steps = 0;  // micro-batches, like warmup_steps: a checkpoint every ceil(n / grad_accumulation) steps
  bool save_each_epoch = false;
  double save_steps_under_loss = 1.8;
  int64_t eval_steps = 100;  // micro-batches, like save_steps
  int64_t save_total_limit = 0;
  int64_t early_stopping_patience = 0;   // evaluations without improvement before stopping (0 = off)
  double early_stopping_threshold = 0.0; // how much lower an eval loss must be to count as better

  bool operator==(const TrainParams&) const = default;
};

// Object: a flat JSON object of scalars (chat_template_kwargs), also given as its JSON text
// (a flag, the web form's text box) or a YAML mapping.
enum class FieldType { Int, Float, Bool, String, Choice, StringList, Object };
// "int", "float", "bool", "string", "choice", "string-list", "object"
std::string_view field_type_name(FieldType t);

struct ParamGroup {
  const char* id;     // "lora"
  const char* title;  // "LoRA"
};
const std::vector<ParamGroup>& param_groups();

struct Field {
  std::string name;   // JSON/YAML key, e.g. "lora_rank"
  FieldType type;
  std::string group;  // a ParamGroup id
  std::string help;
  std::string label;        // plain-language name ("True batch size"; params_words.cpp)
  bool essential = false;   // the web form shows it first, the others under Advanced
  double slider_min = 0, slider_max = 0, slider_step = 0;  // the web form's slider (step 0: none)
  double min = 0, max = 0;  // numbers: inclusive bounds, checked when has_min/has_max
  bool has_min = false, has_max = false;
  bool min_exclusive = false, max_exclusive = false;
  std::vector<std::string> choices;  // Choice only
  std::function<nlohmann::json(const TrainParams&)> get;
  // Stores an already-typed value (what parse_field_value returns); no checks.
  std::function<void(TrainParams&, const nlohmann::json&)> put;

  std::string cli_flag() const;                 // "--lora-rank"
  nlohmann::json default_value() const;         // get(TrainParams{})
};

const std::vector<Field>& param_fields();

// The words for one field, keyed by its name (params_words.cpp): label, essential, slider.
struct FieldWords {
  const char* name;
  const char* label;
  bool essential;
  double slider_min, slider_max, slider_step;  // step 0: no slider
};
const std::vector<FieldWords>& field_words();
// Copies each field's words into it; a field without an entry keeps its name as the label.
void apply_field_words(std::vector<Field>& fields);
const Field* find_field(std::string_view name);  // nullptr when unknown
std::vector<std::string> param_names();

// Converts v to the field's type and checks range/choices. Numbers also accept numeric strings
// ("3e-4", as Training PRO stores learning_rate); bools accept true/false/yes/no/on/off/1/0
// strings; string lists accept an array or a comma-separated string; objects accept an object,
// its JSON text, or null / "" for {}. Throws Error
// "<where>: <key> expects ..., got ..." (where = "run.yaml:4:3", "--lora-rank", "JSON").
nlohmann::json parse_field_value(const Field& f, const nlohmann::json& v, std::string_view where);
void set_field(TrainParams& p, const Field& f, const nlohmann::json& v, std::string_view where);

// Strict: unknown keys throw "unknown key 'x' (did you mean 'y'?)".
void apply_json(const nlohmann::json& j, TrainParams& p, std::string_view where = "JSON");
void apply_yaml(const YAML::Node& node, TrainParams& p, std::string_view where = "YAML");
// YAML text (a config file's contents) over p; errors name `where`:line:column.
void apply_yaml_text(const std::string& text, TrainParams& p, std::string_view where);
void load_yaml_file(const std::filesystem::path& path, TrainParams& p);
nlohmann::json to_json(const TrainParams& p);  // every field: this is training_parameters.json
// Groups + fields (type, default, label, help, essential, slider, bounds, choices, cli).
nlohmann::json schema_json();

// Range, choice and cross-field checks, plus what a run needs (model, lora_name, a dataset).
// Throws Error naming the key, what was expected and the value.
void validate(const TrainParams& p);

// Loads <adapter_dir>/training_parameters.json over p, leniently, for "copy parameters from":
// Training PRO-only keys (higher_rank_limit, report_to wandb, ...) are skipped, its spellings
// (lora_RS, datasetJSONL, ...) are mapped, lora_RS_alpha is lora_alpha when lora_RS is on (its
// rsLoRA scale is lora_RS_alpha / sqrt(r)), eval_stepsJSONL is eval_steps when datasetJSONL is
// set, "None" means empty, and lora_name/always_override/copy_params_from are never copied.
// Returns the keys it ignored, sorted. Bad values still throw.
// Training PRO stores its data choices without extensions ("raw_text_file": "novel") and finds
// them in its datasets folder as <name> (a folder) or <name>.txt, <name>.json, <name>.jsonl
// (datasetJSONL), and the format as formats/<name>.json: a copied data value that names nothing
// under data_root (empty = the current folder) becomes the first of those that exists, still
// relative; when none does it is kept, for the usual "does not exist" error later.
// `copied`, when given, receives the parameter names the file set (our spellings).
std::vector<std::string> copy_params_from(const std::filesystem::path& adapter_dir, TrainParams& p,
                                          const std::filesystem::path& data_root = {},
                                          std::vector<std::string>* copied = nullptr);
// Why copy_params_from ignores `key` (for the note it prints): "not a tpro parameter" for unknown keys.
std::string copy_params_note(const std::string& key);

// Derived values the trainer needs.
std::filesystem::path adapter_dir(const TrainParams& p);             // output_dir / lora_name
std::vector<std::string> resolved_target_modules(const TrainParams& p);  // "q_proj", "v_proj", ...
int64_t effective_grad_accumulation(const TrainParams& p);          // honours legacy batch_size
// The optimizer an `optimizer` name runs (see optimizer_names() in params_fields.cpp), and the
// line to say once when a name runs as another here ("" when it runs as named).
OptimKind optimizer_kind(const std::string& name);
std::string optimizer_note(const std::string& name);
// warmup_steps, save_steps and eval_steps count micro-batches (Training PRO's "steps": its
// current_steps is global_step * gradient_accumulation_steps); Training PRO hands the HF Trainer
// ceil(n / grad_accumulation) optimizer steps for each. 0 stays 0 (off).
int64_t micro_batches_to_steps(int64_t micro_batches, int64_t grad_accumulation);
int64_t optimizer_warmup_steps(const TrainParams& p);  // with effective_grad_accumulation(p)
// The schedule for a run of total_steps optimizer updates. steps_per_epoch = 0 lets the FP_*
// curves use Training PRO's epoch length, ceil(total_steps / epochs). grad_accumulation = 0:
// effective_grad_accumulation(p); the trainer passes the one it runs with (lowered for small data).
SchedulerSpec make_scheduler_spec(const TrainParams& p, int64_t total_steps, int64_t steps_per_epoch = 0,
                                  int64_t grad_accumulation = 0);

}  // namespace tpro
