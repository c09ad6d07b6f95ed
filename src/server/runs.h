// What the Past runs tab does to runs besides listing them (listings.h): delete one, and turn
// training parameters into the YAML file and the `tpro train` command line the CLI takes
// (train/params_text.h) and a YAML file back into the form's values. Deleting renames the run
// folder to a hidden trash name inside --loras (one atomic step: the run is gone or whole),
// then removes that; a crash in between leaves only a hidden folder that the next delete or
// server start removes. Not here: the routes (routes.cpp).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "server/job_manager.h"
#include "server/sandbox.h"

namespace tpro {

// Longest YAML text /api/config/parse takes.
constexpr size_t kMaxConfigBytes = size_t(256) << 10;

// Deletes the run `name` in --loras: a folder holding adapter_config.json, training_graph.json
// or a checkpoint-* folder, or a symlink of that name (the link is removed, never what it
// points to). ApiError 400 for a name that is not one plain folder name or not a run, 404 when
// there is none, 409 while a job trains, exports or evaluates it. Returns {deleted, was}.
nlohmann::json delete_run(const PathSandbox& sb, JobManager& jobs, const std::string& name);
// Removes what earlier deletes left in --loras (folders named kTrashPrefix*); returns how many.
size_t sweep_run_trash(const PathSandbox& sb);

// {yaml, argv, command} of the form's values (request.h train_params_for_text).
nlohmann::json config_text(const nlohmann::json& form, const PathSandbox& sb);
// {yaml, name?}: the parameters of a YAML config as the form takes them: {params (every
// parameter, served paths relative to their folders, output_dir "" for --loras), keys (those
// the file sets), problem? ({message, field}: the first thing Start would refuse)}. ApiError
// 400 with the file's line and column for bad YAML, an unknown key or a bad value, naming the
// parameter as field when the message is about one.
nlohmann::json config_from_yaml(const nlohmann::json& body, const PathSandbox& sb);

}  // namespace tpro
