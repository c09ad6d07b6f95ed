// Folder listings for the UI; see listings.h.
#include "server/listings.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/file.h"
#include "server/api_error.h"
#include "server/request.h"
#include "train/checkpoint.h"
#include "train/params.h"

namespace tpro {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxEntries = 2000;
constexpr int kMaxDepth = 3;

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

int64_t mtime_seconds(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::file_clock::to_sys(t).time_since_epoch())
      .count();
}

std::string data_kind(const fs::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".txt") return "text";
  if (ext == ".json") return "json";
  if (ext == ".jsonl") return "jsonl";
  return "";
}

// A GGUF model by its name (the listing reads no file; using it checks the magic).
bool is_gguf_name(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".gguf";
}

// A symlink that leads out of the root: not listed, and never read (using it is refused too).
bool leads_out(const PathSandbox& sb, Root r, const fs::path& p) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(p, ec))) return false;
  try {
    return !sb.contains(r, resolve_links(p));
  } catch (const std::exception&) {
    return true;  // a loop or an unreadable link
  }
}

json read_json_or_null(const PathSandbox& sb, const fs::path& f) {
  std::error_code ec;
  if (!fs::is_regular_file(f, ec) || leads_out(sb, Root::Loras, f)) return nullptr;
  try {
    return json::parse(read_file(f));
  } catch (const std::exception&) {
    return nullptr;  // a half-written or foreign file: the listing shows what it can
  }
}

}  // namespace

json chart_record(const LogRecord& r) {
  json j = {{"step", r.step},     {"epoch", r.epoch}, {"loss", number_or_null(r.loss)},
            {"lr", r.lr},         {"grad_norm", number_or_null(r.grad_norm)},
            {"tokens_per_s", r.tokens_per_s}, {"elapsed_s", r.elapsed_s}};
  if (r.eval_loss) j["eval_loss"] = number_or_null(*r.eval_loss);
  if (!r.markers.empty()) {
    json m = json::array();
    for (const LogMarker& k : r.markers) m.push_back({{"kind", k.kind}, {"label", k.label}, {"epoch", k.epoch}});
    j["markers"] = std::move(m);
  }
  return j;
}

json list_models(const PathSandbox& sb) {
  std::vector<std::string> names;
  const fs::path& root = sb.root(Root::Models);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator() && names.size() < kMaxEntries; it.increment(ec)) {
    if (it.depth() >= 2) it.disable_recursion_pending();
    if (leads_out(sb, Root::Models, it->path())) continue;
    if (it->is_directory() && fs::exists(it->path() / "config.json")) {
      names.push_back(it->path().lexically_relative(root).string());
      it.disable_recursion_pending();
    } else if (it->is_regular_file() && is_gguf_name(it->path())) {
      names.push_back(it->path().lexically_relative(root).string());
    }
  }
  std::sort(names.begin(), names.end());
  json out = json::array();
  for (const auto& n : names) out.push_back({{"name", n}});
  return out;
}

json list_data_files(const PathSandbox& sb) {
  json out = json::array();
  const fs::path& root = sb.root(Root::Data);
  std::vector<std::pair<std::string, json>> rows;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator() && rows.size() < kMaxEntries; it.increment(ec)) {
    if (it.depth() >= kMaxDepth - 1) it.disable_recursion_pending();
    if (leads_out(sb, Root::Data, it->path())) continue;
    const std::string rel = it->path().lexically_relative(root).string();
    if (it->is_directory()) {
      rows.push_back({rel, {{"path", rel}, {"kind", "folder"}, {"size", 0}}});
    } else if (it->is_regular_file()) {
      const std::string kind = data_kind(it->path());
      if (!kind.empty()) rows.push_back({rel, {{"path", rel}, {"kind", kind}, {"size", it->file_size()}}});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& r : rows) out.push_back(std::move(r.second));
  return out;
}

json list_runs(const PathSandbox& sb) {
  std::vector<std::pair<int64_t, json>> runs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sb.root(Root::Loras), fs::directory_options::skip_permission_denied, ec)) {
    if (!e.is_directory() || leads_out(sb, Root::Loras, e.path())) continue;
    if (e.path().filename().string().rfind(kTrashPrefix, 0) == 0) continue;  // a run being deleted
    const fs::path dir = e.path();
    const fs::path ck = latest_checkpoint(dir);
    const bool adapter = fs::exists(dir / "adapter_config.json");
    const bool graph = fs::exists(dir / "training_graph.json");
    if (!adapter && !graph && ck.empty()) continue;
    json log = read_json_or_null(sb, dir / "training_log.json");
    if (log.is_null() && !ck.empty()) log = read_json_or_null(sb, ck / "training_log.json");
    json run = {{"name", dir.filename().string()}, {"has_adapter", adapter}, {"has_graph", graph || !ck.empty()},
                {"modified", mtime_seconds(dir)}};
    if (log.is_object()) {
      run["steps"] = log.value("current_steps", json(nullptr));
      run["epoch"] = log.value("epoch", json(nullptr));
      run["loss"] = log.value("loss", json(nullptr));
      run["stop_reason"] = log.value("stop_reason", json(nullptr));
      run["base_model"] = log.value("base_model_name", json(nullptr));
    }
    json cks = json::array();
    for (const auto& c : fs::directory_iterator(dir, ec))
      if (c.is_directory() && c.path().filename().string().rfind("checkpoint-", 0) == 0)
        cks.push_back(c.path().filename().string());
    std::sort(cks.begin(), cks.end());
    run["checkpoints"] = std::move(cks);
    runs.push_back({mtime_seconds(dir), std::move(run)});
  }
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  json out = json::array();
  for (auto& r : runs) out.push_back(std::move(r.second));
  return out;
}

json run_graph(const PathSandbox& sb, const std::string& name) {
  const fs::path dir = adapter_folder(sb, name, "name");
  fs::path from = dir;
  if (!fs::exists(dir / "training_graph.json")) {
    from = latest_checkpoint(dir);
    if (from.empty() || !fs::exists(from / "training_graph.json"))
      not_found(cat("run '", name, "' has no training_graph.json yet"));
  }
  const RunLog log = RunLog::load(from);
  json recs = json::array();
  for (const auto& r : log.records()) recs.push_back(chart_record(r));
  // Marks for the chart: the checkpoints saved (their step, from the folder name) and the
  // run's logged events (kind batch_order: the switch to sequential order), bounded.
  json checkpoints = json::array(), events = json::array();
  std::error_code ec;
  for (const auto& c : fs::directory_iterator(dir, ec)) {
    long long step = -1;
    const std::string n = c.path().filename().string();
    if (checkpoints.size() < kMaxEntries && c.is_directory() && n.find(".tmp-") == std::string::npos &&
        std::sscanf(n.c_str(), "checkpoint-%lld-", &step) == 1)
      checkpoints.push_back({{"step", step}, {"path", n}});
  }
  std::sort(checkpoints.begin(), checkpoints.end(), [](const json& a, const json& b) { return a["step"] < b["step"]; });
  const json info = read_json_or_null(sb, from / "training_log.json");
  if (info.is_object() && info.contains("events") && info["events"].is_array())
    for (const json& e : info["events"])
      if (events.size() < kMaxEntries && e.is_object() && e.value("step", json()).is_number_integer() &&
          e.value("kind", json()).is_string())
        events.push_back({{"step", e["step"]}, {"kind", e["kind"]}, {"message", e.value("message", "")}});
  return {{"name", name},
          {"source", sb.display(Root::Loras, from / "training_graph.json")},
          {"records", recs},
          {"checkpoints", checkpoints},
          {"events", events}};
}

json run_params(const PathSandbox& sb, const std::string& name) {
  const fs::path dir = adapter_folder(sb, name, "name");
  if (!fs::exists(dir / "training_parameters.json"))
    not_found(cat("run '", name, "' has no training_parameters.json"));
  TrainParams p;
  std::vector<std::string> ignored, copied;
  try {
    ignored = copy_params_from(dir, p, sb.root(Root::Data), &copied);
  } catch (const Error& e) {
    bad_request("copy_params_from", e.what());
  }
  // Only what the file holds: a Training PRO file has no model (nor our own parameters), and
  // the form keeps its values for those.
  const json all = to_json(p);
  json params = json::object();
  for (const std::string& k : copied) params[k] = all.at(k);
  paths_relative_to_roots(sb, params);
  params.erase("output_dir");
  return {{"name", name}, {"params", params}, {"ignored", ignored}};
}

void paths_relative_to_roots(const PathSandbox& sb, json& params) {
  auto rel = [&](const char* key, Root r) {
    if (!params.contains(key) || !params[key].is_string()) return;
    std::string v = params[key].get<std::string>();
    std::error_code ec;
    if (!v.empty() && fs::path(v).is_absolute() && sb.contains(r, fs::weakly_canonical(v, ec)))
      params[key] = sb.display(r, fs::weakly_canonical(v, ec));
  };
  rel("model", Root::Models);
  for (const char* k : {"raw_text_file", "dataset", "eval_dataset", "format", "jsonl_dataset", "jsonl_eval_dataset"})
    rel(k, Root::Data);
  rel("copy_params_from", Root::Loras);
  rel("resume_from_checkpoint", Root::Loras);
}

}  // namespace tpro
