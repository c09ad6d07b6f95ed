// Turning API request bodies into checked job inputs: training parameters (strict keys,
// typed through the parameter table, every path inside its served folder, the trainer's own
// validation), perplexity and export jobs and mid-run stop changes. Each problem is an
// ApiError 400 that names the field, so the form can show it there. Not here: running
// anything (job_manager.h).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "server/job_manager.h"
#include "server/sandbox.h"
#include "train/params.h"

namespace tpro {

// `body` holds any subset of the parameters (missing ones keep their defaults; a non-empty
// copy_params_from is loaded first, as in the CLI). output_dir defaults to the --loras folder.
// for_check: lora_name may be empty (the dataset check writes nothing).
TrainParams train_params_from_request(const nlohmann::json& body, const PathSandbox& sb, bool for_check = false);

// {model, lora?, text_file, stride?, max_length?, threads?, comment?}; lora names a PEFT adapter
// folder or a GGUF LoRA file in --loras.
PerplexityJob perplexity_job_from_request(const nlohmann::json& body, const PathSandbox& sb);

// {kind: merge | merge_gguf | adapter_gguf | zip, lora, model?, out?, dtype?, overwrite?,
// include_checkpoints?}: lora in --loras (merges also take a GGUF adapter file), model in
// --models, out relative to --models (merges) or --loras (adapter GGUF, zip; a default name
// from lora when empty). An existing out is ApiError 409 type "exists" unless overwrite.
ExportJob export_job_from_request(const nlohmann::json& body, const PathSandbox& sb);

struct StopChange {
  std::optional<double> stop_at_loss;
  std::optional<int64_t> stop_at_epoch;
};
// {stop_at_loss?, stop_at_epoch?}: at least one, each checked like the parameter of that name.
StopChange stop_change_from_request(const nlohmann::json& body);

// Parses a request body as a JSON object (400 with the parse position otherwise).
nlohmann::json parse_json_body(const std::string& body);

// An adapter folder name from a URL or request: a plain name of an existing folder in --loras.
std::filesystem::path adapter_folder(const PathSandbox& sb, const std::string& name, const std::string& field);

// Checked fields for other requests (the playground's), with the messages the jobs' get:
// a base model in --models, an adapter (PEFT folder or GGUF file) in --loras, an integer in
// [lo, hi], a string, and no keys but `known`. Each throws ApiError 400 naming the field.
std::filesystem::path request_model_path(const PathSandbox& sb, const std::string& path, const std::string& field);
std::filesystem::path lora_input(const PathSandbox& sb, const std::string& name, const std::string& field);
int64_t request_int(const nlohmann::json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi);
std::string request_string(const nlohmann::json& body, const char* key);
void request_keys(const nlohmann::json& body, std::initializer_list<const char*> known);

}  // namespace tpro
