// What the served folders hold, for the web form's pickers and the past-runs list: model
// folders and .gguf files in --models, dataset/format/text files in --data, adapter folders
// (past runs, with their training_graph.json for the chart and training_parameters.json for
// "copy parameters from") in --loras. Listings are bounded (depth and count) so a huge folder cannot stall a
// request; symlinks that lead out of their folder are left out. Not here: validating a chosen
// path (sandbox.h, request.h).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "server/sandbox.h"
#include "train/run_log.h"

namespace tpro {

// A log record as the chart reads it: {step, epoch, loss, lr, grad_norm, eval_loss?, ...,
// markers?: [{kind, label, epoch}]} (markers: e.g. the batch order's switch, a vertical line).
nlohmann::json chart_record(const LogRecord& r);

nlohmann::json list_models(const PathSandbox& sb);      // [{name}] folders with a config.json, and .gguf files
nlohmann::json list_data_files(const PathSandbox& sb);  // [{path, kind: text|json|jsonl|folder, size}]
nlohmann::json list_runs(const PathSandbox& sb);        // [{name, steps, loss, stop_reason, ...}] newest first

// The run's chart records from training_graph.json (or its latest checkpoint's while no final
// one exists); ApiError 404 when the run has neither.
nlohmann::json run_graph(const PathSandbox& sb, const std::string& name);
// {params, ignored}: training_parameters.json read as "copy parameters from" reads it; params
// holds the parameters the file sets, no others (data names resolved in --data).
nlohmann::json run_params(const PathSandbox& sb, const std::string& name);
// Paths inside the served folders (model in --models, the data files in --data, copy_params_from
// and resume_from_checkpoint in --loras) shown relative
// to them, as the form's pickers list them; other values are left as they are.
void paths_relative_to_roots(const PathSandbox& sb, nlohmann::json& params);

}  // namespace tpro
