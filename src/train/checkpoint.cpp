// Checkpoint save/load; see checkpoint.h.
#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/file.h"
#include "formats/peft_adapter.h"
#include "io/safetensors.h"

namespace tpro {

using nlohmann::json;

namespace {
// " and modules_to_save embed_tokens, lm_head", or "" without saved modules.
std::string modules_note(const LoraConfig& c) {
  std::string s;
  for (const auto& m : saved_module_names(c)) s += (s.empty() ? " and modules_to_save " : ", ") + m;
  return s;
}
}  // namespace

std::string checkpoint_name(int64_t step, double epoch, double loss) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "checkpoint-%lld-epoch%.2f-loss%.4f", static_cast<long long>(step), epoch, loss);
  return buf;
}

fs::path save_checkpoint(const fs::path& adapter_dir, const LoraWeights& lw, const TrainerState& st,
                         const RunLog& log, const json& params_json, const std::string& base_model,
                         const nlohmann::ordered_json& training_prompt) {
  const fs::path final_dir = adapter_dir / checkpoint_name(st.step, st.epoch, st.loss);
  const fs::path tmp = begin_atomic_dir(final_dir);
  save_adapter(tmp, lw, base_model);
  SafeTensorsWriter w;
  const int64_t n = lw.n_params();
  for (const OptimBuffer& b : lw.state) {  // the exact state: 8-bit codes stay 8-bit
    TPRO_CHECK(int64_t(b.u8 ? b.codes.size() : b.f32.size()) == b.count, "optimizer state ", b.name, " not downloaded");
    if (b.u8) w.add(b.name, DType::U8, {b.count}, b.codes.data());
    else w.add_f32(b.name, {b.count}, b.f32.data());
  }
  w.write(tmp / "optimizer.safetensors");
  json j = {{"step", st.step},       {"epoch", st.epoch},     {"loss", st.loss},
            {"step_offset", st.step_offset}, {"epoch_offset", st.epoch_offset},
            {"loss_threshold", st.loss_threshold}, {"batcher", st.batcher}, {"extra", st.extra},
            {"n_lora_params", n},     {"optimizer", optim_kind_name(lw.optim)}, {"format", "tpro-checkpoint-1"}};
  write_file_atomic(tmp / "trainer_state.json", j.dump(1));
  write_file_atomic(tmp / "training_parameters.json", params_json.dump(2));
  if (!training_prompt.is_null()) write_file_atomic(tmp / "training_prompt.json", training_prompt.dump(2));
  log.write(tmp);
  // The manifest goes last: a folder counts as a checkpoint only when it lists every file.
  json manifest = json::object();
  for (const auto& e : fs::directory_iterator(tmp))
    if (e.is_regular_file()) manifest[e.path().filename().string()] = e.file_size();
  write_file_atomic(tmp / kCheckpointManifest, json({{"files", manifest}}).dump(1));
  commit_atomic_dir(tmp, final_dir);
  return final_dir;
}

std::string checkpoint_incomplete(const fs::path& dir) {
  std::error_code ec;
  const fs::path mp = dir / kCheckpointManifest;
  if (!fs::exists(mp, ec)) {  // written before manifests: every file a resume reads must be there
    for (const char* f : {"trainer_state.json", "adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors"})
      if (!fs::exists(dir / f, ec)) return cat(f, " is missing");
    return "";
  }
  json m;
  try {
    m = json::parse(read_file(mp));
  } catch (const std::exception& e) {
    return cat(kCheckpointManifest, " is unreadable: ", e.what());
  }
  if (!m.is_object() || !m.contains("files") || !m["files"].is_object())
    return cat(kCheckpointManifest, " has no \"files\" object");
  for (const auto& [name, size] : m["files"].items()) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      return cat(kCheckpointManifest, " names '", name, "', which is not a file of the checkpoint");
    if (!size.is_number_unsigned()) return cat(kCheckpointManifest, ": size of ", name, " is not a number");
    const uintmax_t got = fs::file_size(dir / name, ec);
    if (ec) return cat(name, " is missing");
    if (got != size.get<uintmax_t>()) return cat(name, " has ", got, " bytes, the manifest says ", size.get<uintmax_t>());
  }
  return "";
}

TrainerState load_checkpoint(const fs::path& dir, const Model& model, LoraWeights& lw, RunLog* log) {
  const fs::path sp = dir / "trainer_state.json";
  if (!fs::exists(sp)) fail(sp.string(), ": not found (hint: --resume needs a checkpoint-* folder written by tpro)");
  json j;
  try {
    j = json::parse(read_file(sp));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for "1e400"
    fail(sp.string(), ": not valid JSON: ", e.what());
  }
  // Typed reads: nlohmann's value() throws type_error on another type, and converting a huge
  // double to int64 is undefined behaviour (inputs fuzz/fuzz_checkpoint makes).
  if (!j.is_object()) fail(sp.string(), ": expected a JSON object, got ", j.type_name());
  auto number = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return 0.0;
    if (!it->is_number()) fail(sp.string(), ": '", key, "' must be a number, got ", it->type_name());
    return it->get<double>();
  };
  TrainerState st;
  const double step = number("step");
  if (!(step >= 0 && step <= 9.0e15 && step == std::floor(step)))
    fail(sp.string(), ": 'step' must be a whole number >= 0, got ", step);
  st.step = int64_t(step);
  const double offset = number("step_offset");  // 0 in checkpoints of runs that continued nothing
  if (!(offset >= 0 && offset <= step && offset == std::floor(offset)))
    fail(sp.string(), ": 'step_offset' must be a whole number from 0 to 'step' (", step, "), got ", offset);
  st.step_offset = int64_t(offset);
  st.epoch = number("epoch");
  st.epoch_offset = number("epoch_offset");
  if (!(st.epoch_offset >= 0 && st.epoch_offset <= st.epoch))
    fail(sp.string(), ": 'epoch_offset' must be from 0 to 'epoch' (", st.epoch, "), got ", st.epoch_offset);
  st.loss = number("loss");
  st.loss_threshold = number("loss_threshold");
  st.batcher = j.value("batcher", json());
  st.extra = j.value("extra", json::object());
  if (const std::string why = checkpoint_incomplete(dir); !why.empty())
    fail(dir.string(), ": incomplete checkpoint (", why, "; hint: a run was killed while writing or removing it; ",
         "resume from an earlier checkpoint)");
  LoraWeights loaded = load_adapter(dir, model);
  if (loaded.cfg.r != lw.cfg.r || loaded.cfg.targets != lw.cfg.targets || loaded.cfg.dora != lw.cfg.dora ||
      saved_module_names(loaded.cfg) != saved_module_names(lw.cfg))
    fail(dir.string(), ": checkpoint has rank ", loaded.cfg.r, " on ", loaded.slots.size(), " projections",
         loaded.cfg.dora ? " with DoRA" : "", modules_note(loaded.cfg), " but this run asks for rank ", lw.cfg.r, " on ",
         lw.slots.size(), " projections", lw.cfg.dora ? " with DoRA" : "", modules_note(lw.cfg),
         " (hint: resume with the checkpoint's training parameters)");
  // Written before tpro had other optimizers: no "optimizer" key means AdamW.
  std::string optim = "adamw";
  if (auto it = j.find("optimizer"); it != j.end()) {
    if (!it->is_string()) fail(sp.string(), ": 'optimizer' must be a string, got ", it->type_name());
    optim = it->get<std::string>();
  }
  if (optim != optim_kind_name(lw.optim))
    fail(dir.string(), ": the checkpoint holds the state of the ", optim, " optimizer but this run uses ",
         optim_kind_name(lw.optim), " (hint: resume with the checkpoint's optimizer, as in its training_parameters.json)");
  lw.params = loaded.params;
  const fs::path op = dir / "optimizer.safetensors";
  SafeTensorsFile opt(op);
  for (OptimBuffer& b : lw.state) {
    if (!opt.has(b.name)) fail(op.string(), ": no tensor '", b.name, "' (hint: the file is damaged; resume from an earlier checkpoint)");
    TensorView t = opt.view(b.name);
    const DType want = b.u8 ? DType::U8 : DType::F32;
    if (t.numel() != b.count || t.dtype != want)
      fail(op.string(), ": '", b.name, "' has ", t.numel(), " ", dtype_name(t.dtype), " values, this adapter needs ",
           b.count, " ", dtype_name(want), " (hint: resume with the checkpoint's lora_rank and targets)");
    if (b.u8) std::copy_n(static_cast<const uint8_t*>(t.data), b.count, b.codes.begin());
    else std::copy(t.f32(), t.f32() + b.count, b.f32.begin());
  }
  if (log && fs::exists(dir / "training_graph.json")) *log = RunLog::load(dir);
  return st;
}

int64_t checkpoint_step(const fs::path& dir) {
  const std::string name = dir.filename().string();
  long long step = -1;
  if (name.rfind("checkpoint-", 0) != 0 || std::sscanf(name.c_str(), "checkpoint-%lld", &step) != 1 || step < 0)
    return -1;
  return step;
}

std::vector<fs::path> list_checkpoints(const fs::path& adapter_dir) {
  std::vector<std::pair<long long, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(adapter_dir, ec)) return {};
  for (const auto& e : fs::directory_iterator(adapter_dir, ec)) {
    const std::string name = e.path().filename().string();
    long long step = -1;
    if (name.rfind("checkpoint-", 0) != 0 || name.find(".tmp-") != std::string::npos ||
        name.find(".old-") != std::string::npos)
      continue;
    if (std::sscanf(name.c_str(), "checkpoint-%lld-", &step) != 1) continue;
    if (!checkpoint_incomplete(e.path()).empty()) continue;  // unfinished: never a resume point
    found.emplace_back(step, e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [step, path] : found) out.push_back(path);
  return out;
}

fs::path latest_checkpoint(const fs::path& adapter_dir) {
  auto all = list_checkpoints(adapter_dir);
  return all.empty() ? fs::path() : all.back();
}

std::vector<fs::path> prune_checkpoints(const fs::path& adapter_dir, int64_t keep, const fs::path& protect) {
  std::vector<fs::path> removed;
  if (keep <= 0) return removed;
  auto all = list_checkpoints(adapter_dir);
  // The protected one (early stopping's best) is kept besides the `keep` newest.
  std::erase_if(all, [&](const fs::path& c) { return !protect.empty() && c == protect; });
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) {
    // Renamed first (atomic), so a kill during the removal leaves a ".deleting-" folder that is
    // never taken for a checkpoint, rather than a half-deleted one under its real name.
    const fs::path doomed = all[i].parent_path() / cat(all[i].filename().string(), kDeletingTag, ::getpid());
    std::error_code ec;
    fs::rename(all[i], doomed, ec);
    if (ec) fail("cannot remove old checkpoint ", all[i].string(), ": ", ec.message());
    fs::remove_all(doomed, ec);
    if (ec) fail("cannot remove old checkpoint ", doomed.string(), ": ", ec.message());
    removed.push_back(all[i]);
  }
  return removed;
}

std::vector<std::string> clean_stale_temporaries(const fs::path& adapter_dir) {
  std::vector<std::string> cleaned;
  std::error_code ec;
  if (!fs::is_directory(adapter_dir, ec)) return cleaned;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(adapter_dir, ec)) entries.push_back(e.path());
  for (const fs::path& p : entries) {
    const std::string name = p.filename().string();
    for (const char* tag : {".tmp-", kDeletingTag, ".old-"}) {
      const size_t at = name.rfind(tag);
      if (at == std::string::npos || at == 0) continue;
      const std::string pid = name.substr(at + std::string(tag).size());
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      const fs::path base = adapter_dir / name.substr(0, at);
      if (std::string(tag) == ".old-" && !fs::exists(base, ec)) {
        // Killed between the two renames of commit_atomic_dir: the old folder is the only copy.
        fs::rename(p, base, ec);
        if (ec) fail("cannot restore ", p.string(), " to ", base.string(), ": ", ec.message());
        cleaned.push_back(cat(name, " (restored as ", base.filename().string(), ")"));
      } else {
        fs::remove_all(p, ec);
        if (ec) fail("cannot remove the stale ", p.string(), ": ", ec.message());
        cleaned.push_back(name);
      }
      break;
    }
  }
  return cleaned;
}

}  // namespace tpro
