// Deleting runs and the YAML / command-line text of training parameters; see runs.h.
#include "server/runs.h"

#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>

#include "server/api_error.h"
#include "server/listings.h"
#include "server/request.h"
#include "train/checkpoint.h"
#include "train/params_text.h"

namespace tpro {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxTrashSwept = 1000;

bool is_run_folder(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "adapter_config.json", ec) || fs::exists(dir / "training_graph.json", ec) ||
         !latest_checkpoint(dir).empty();
}

// A fresh hidden name in the loras folder.
fs::path trash_name(const fs::path& root) {
  static std::atomic<uint64_t> counter{0};
  const auto t = std::chrono::system_clock::now().time_since_epoch().count();
  for (;;) {
    const fs::path p = root / cat(kTrashPrefix, t, "-", counter++);
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(p, ec))) return p;
  }
}

}  // namespace

size_t sweep_run_trash(const PathSandbox& sb) {
  std::vector<fs::path> trash;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sb.root(Root::Loras), fs::directory_options::skip_permission_denied, ec)) {
    if (trash.size() >= kMaxTrashSwept) break;
    if (e.path().filename().string().rfind(kTrashPrefix, 0) == 0) trash.push_back(e.path());
  }
  size_t n = 0;
  for (const fs::path& p : trash) {
    std::error_code rec;
    fs::remove_all(p, rec);  // removes links as links: nothing outside is touched
    n += rec ? 0 : 1;
  }
  return n;
}

json delete_run(const PathSandbox& sb, JobManager& jobs, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos ||
      name.find('\0') != std::string::npos || name.rfind(kTrashPrefix, 0) == 0)
    bad_request("name", cat("name must be the name of a run folder in the loras folder, got '", name, "'"));
  const fs::path root = sb.root(Root::Loras);
  const fs::path dir = root / name;  // root is canonical and name one plain component: inside
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dir, ec);
  if (!fs::exists(st)) not_found(cat("run '", name, "' does not exist in the loras folder ", root.string()));
  const bool link = fs::is_symlink(st);
  if (!link && !fs::is_directory(st))
    bad_request("name", cat("'", name, "' is a file, not a run folder (hint: only training runs are deleted here)"));
  // The rename is the delete: from then on the run is not listed, and nothing reads a half-removed
  // folder under its name. It happens under the job lock, so no job starts on the run meanwhile
  // (a run being trained is "in use" before it holds any file that makes it a run).
  const fs::path trash = trash_name(root);
  jobs.unless_in_use(dir, cat("run '", name, "'"), [&] {
    if (!link && !is_run_folder(dir))
      bad_request("name", cat("'", name, "' is not a run folder: it holds no adapter_config.json, ",
                              "training_graph.json or checkpoint-* folder (hint: only training runs are deleted here)"));
    std::error_code rec;
    fs::rename(dir, trash, rec);
    if (rec) throw ApiError(500, "server_error", cat("cannot delete run '", name, "': ", rec.message()));
  });
  sweep_run_trash(sb);  // this one and any an earlier crash left
  return {{"deleted", name}, {"was", link ? "link" : "folder"}};
}

json config_text(const json& form, const PathSandbox& sb) {
  const TrainParams p = train_params_for_text(form, sb);
  const std::vector<std::string> argv = params_to_argv(p);
  return {{"yaml", params_to_yaml(p)}, {"argv", argv}, {"command", shell_command(argv)}};
}

json config_from_yaml(const json& body, const PathSandbox& sb) {
  for (const auto& [key, value] : body.items())
    if (key != "yaml" && key != "name") bad_request(key, cat("unknown key '", key, "' (expected yaml, name)"));
  const auto y = body.find("yaml");
  if (y == body.end() || !y->is_string()) bad_request("yaml", "yaml expects the text of a YAML config file");
  const std::string& text = y->get_ref<const std::string&>();
  if (text.size() > kMaxConfigBytes)
    bad_request("yaml", cat("the YAML config is ", text.size(), " bytes, more than the ", kMaxConfigBytes >> 10,
                            " KiB a config may have"));
  std::string where = body.value("name", std::string("config.yaml"));
  if (where.empty() || where.size() > 200 || where.find_first_of("\n\r") != std::string::npos) where = "config.yaml";
  TrainParams p;
  std::vector<std::string> keys;
  try {
    apply_yaml_text(text, p, where);
    const YAML::Node node = YAML::Load(text);  // parsed above: only its keys are read here
    if (node.IsMap())
      for (const auto& kv : node) keys.push_back(kv.first.Scalar());
  } catch (const Error& e) {
    bad_request(field_in_message(e.what()), e.what());
  } catch (const std::exception& e) {
    bad_request("yaml", cat(where, ": invalid YAML: ", e.what()));
  }
  json params = to_json(p);
  paths_relative_to_roots(sb, params);
  // --loras itself (what a saved config holds) is the form's empty output_dir.
  std::error_code ec;
  const std::string od = params["output_dir"].get<std::string>();
  if (!od.empty() && fs::path(od).is_absolute() && fs::weakly_canonical(od, ec) == sb.root(Root::Loras))
    params["output_dir"] = "";
  json out = {{"params", params}, {"keys", keys}};
  // What Start would refuse first (a missing model, a file not in --data ...), for the form to
  // show next to its field; the values are loaded all the same.
  try {
    json check = params;
    if (check["output_dir"] == "") check.erase("output_dir");
    train_params_from_request(check, sb, true);
  } catch (const ApiError& e) {
    out["problem"] = {{"message", e.what()}, {"field", e.field()}};
  }
  return out;
}

}  // namespace tpro
