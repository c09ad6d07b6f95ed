// RunLog's JSON files and the console progress line; see run_log.h.
#include "train/run_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/file.h"

namespace tpro {

namespace {

using json = nlohmann::json;

json maybe(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json record_json(const LogRecord& r) {
  json e = {{"current_steps", r.step}, {"epoch", r.epoch}, {"loss", maybe(r.loss)}, {"learning_rate", r.lr}};
  if (std::isfinite(r.grad_norm)) e["grad_norm"] = r.grad_norm;
  if (r.eval_loss) e["eval_loss"] = *r.eval_loss;
  if (r.tokens_per_s > 0) e["tokens_per_second"] = r.tokens_per_s;
  e["elapsed"] = r.elapsed_s;
  if (!r.markers.empty()) {
    json m = json::array();
    for (const LogMarker& k : r.markers) m.push_back({{"kind", k.kind}, {"label", k.label}, {"epoch", k.epoch}});
    e["markers"] = std::move(m);
  }
  return e;
}

std::vector<LogMarker> markers_at(const json& e, const std::string& where, size_t i) {
  std::vector<LogMarker> out;
  auto it = e.find("markers");
  if (it == e.end() || it->is_null()) return out;
  if (!it->is_array()) fail(where, ": entry ", i, ": 'markers' must be a list, got ", it->type_name());
  for (size_t k = 0; k < it->size(); ++k) {
    const json& m = (*it)[k];
    auto str = [&](const char* key) {
      if (!m.is_object() || !m.contains(key) || !m[key].is_string())
        fail(where, ": entry ", i, ": markers[", k, "] needs a string '", key, "', got ", m.dump());
      return m[key].get<std::string>();
    };
    LogMarker mk{str("kind"), str("label"), 0.0};
    if (!m.contains("epoch") || !m["epoch"].is_number() || !std::isfinite(m["epoch"].get<double>()))
      fail(where, ": entry ", i, ": markers[", k, "] needs a number 'epoch', got ", m.dump());
    mk.epoch = m["epoch"].get<double>();
    out.push_back(std::move(mk));
  }
  return out;
}

double number_at(const json& e, const char* key, const std::string& where, size_t i, bool required, double dflt) {
  auto it = e.find(key);
  if (it == e.end() || it->is_null()) {
    if (required) fail(where, ": entry ", i, " has no '", key, "'");
    return dflt;
  }
  if (!it->is_number()) fail(where, ": entry ", i, ": '", key, "' must be a number, got ", it->dump());
  return it->get<double>();
}

json read_json_file(const fs::path& file) {
  try {
    return json::parse(read_file(file));
  } catch (const json::parse_error& e) {
    fail(file.string(), ": invalid JSON at byte ", e.byte, " (", e.what(), ")");
  } catch (const json::out_of_range& e) {  // a number beyond double, "1e400"
    fail(file.string(), ": invalid JSON (", e.what(), ")");
  }
}

// training_log.json's "warnings" and "events" lists (each absent, or a list of objects).
void carry_notes(RunLog& log, const json& j, const fs::path& file) {
  for (const char* key : {"warnings", "events"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_array()) fail(file.string(), ": '", key, "' must be a list, got ", it->type_name());
    for (const json& e : *it)
      if (!e.is_object()) fail(file.string(), ": '", key, "' entries must be objects, got ", e.dump());
    log.set_info(key, *it);
  }
}

}  // namespace

void RunLog::add(const LogRecord& r) {
  if (!records_.empty() && r.step < records_.back().step)
    fail("RunLog: step ", r.step, " logged after step ", records_.back().step, " (steps must not go back)");
  records_.push_back(r);
}

void RunLog::add_eval(int64_t step, double epoch, double eval_loss) {
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    if (it->step == step) {
      it->eval_loss = eval_loss;
      return;
    }
    if (it->step < step) break;
  }
  LogRecord r;
  r.step = step;
  r.epoch = epoch;
  r.eval_loss = eval_loss;
  if (!records_.empty()) {
    r.lr = records_.back().lr;
    r.elapsed_s = records_.back().elapsed_s;
  }
  add(r);
}

void RunLog::set_info(const std::string& key, json value) { info_[key] = std::move(value); }

void RunLog::add_warning(int64_t step, const std::string& text) {
  if (!info_.contains("warnings")) info_["warnings"] = json::array();
  info_["warnings"].push_back({{"step", step}, {"message", text}});
}

void RunLog::add_event(int64_t step, const std::string& kind, const std::string& text) {
  if (!info_.contains("events")) info_["events"] = json::array();
  info_["events"].push_back({{"step", step}, {"kind", kind}, {"message", text}});
}

json RunLog::graph_json() const {
  json a = json::array();
  for (const auto& r : records_) a.push_back(record_json(r));
  return a;
}

json RunLog::log_json() const {
  json j = info_;
  j["current_steps"] = records_.empty() ? 0 : records_.back().step;
  j["epoch"] = records_.empty() ? 0.0 : records_.back().epoch;
  j["logged_steps"] = records_.size();
  const LogRecord* min_rec = nullptr;
  for (const auto& r : records_) {
    if (std::isfinite(r.loss)) {
      j["loss"] = r.loss;
      if (!min_rec || r.loss < min_rec->loss) min_rec = &r;
    }
    if (std::isfinite(r.grad_norm)) j["grad_norm"] = r.grad_norm;
    if (r.eval_loss) j["eval_loss"] = *r.eval_loss;
  }
  if (!records_.empty()) {
    j["learning_rate"] = records_.back().lr;
    j["train_runtime"] = records_.back().elapsed_s;
    if (records_.back().tokens_per_s > 0) j["tokens_per_second"] = records_.back().tokens_per_s;
  }
  if (min_rec) {
    j["min_loss"] = min_rec->loss;
    j["min_loss_step"] = min_rec->step;
  }
  return j;
}

void RunLog::write(const fs::path& dir) const {
  write_file_atomic(dir / "training_graph.json", graph_json().dump(2) + "\n");
  write_file_atomic(dir / "training_log.json", log_json().dump(2) + "\n");
}

RunLog RunLog::from_graph_json(const json& j, const std::string& where) {
  if (!j.is_array()) fail(where, ": expected a list of log entries, got ", j.type_name());
  RunLog log;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& e = j[i];
    if (!e.is_object()) fail(where, ": entry ", i, " must be an object, got ", e.dump());
    LogRecord r;
    double step = number_at(e, "current_steps", where, i, true, 0);
    if (!(step >= 0 && step <= 9.0e15 && step == std::floor(step)))
      fail(where, ": entry ", i, ": 'current_steps' must be a whole number >= 0, got ", step);
    r.step = int64_t(step);
    r.epoch = number_at(e, "epoch", where, i, true, 0);
    r.loss = number_at(e, "loss", where, i, false, NAN);
    r.lr = number_at(e, "learning_rate", where, i, true, 0);
    r.grad_norm = number_at(e, "grad_norm", where, i, false, NAN);
    if (double ev = number_at(e, "eval_loss", where, i, false, NAN); std::isfinite(ev)) r.eval_loss = ev;
    r.tokens_per_s = number_at(e, "tokens_per_second", where, i, false, 0);
    r.elapsed_s = number_at(e, "elapsed", where, i, false, 0);
    r.markers = markers_at(e, where, i);
    if (!log.records_.empty() && r.step < log.records_.back().step)
      fail(where, ": entry ", i, ": current_steps ", r.step, " comes after ", log.records_.back().step);
    log.records_.push_back(r);
  }
  return log;
}

RunLog RunLog::load(const fs::path& dir) {
  const fs::path file = dir / "training_graph.json";
  RunLog log = from_graph_json(read_json_file(file), file.string());
  const fs::path lf = dir / "training_log.json";
  if (fs::exists(lf)) {
    const json j = read_json_file(lf);
    if (!j.is_object()) fail(lf.string(), ": expected a JSON object, got ", j.type_name());
    carry_notes(log, j, lf);
  }
  return log;
}

PreviousRun read_previous_run(const fs::path& dir) {
  static const char* kHint = " (hint: fix or remove the file, or --always-override to start the adapter over)";
  PreviousRun prev;
  const fs::path lf = dir / "training_log.json", gf = dir / "training_graph.json";
  json lj;
  if (fs::exists(lf)) {
    lj = read_json_file(lf);
    if (!lj.is_object()) fail(lf.string(), ": expected a JSON object, got ", lj.type_name(), kHint);
    // Training PRO's *_adjusted count across the runs it continued; its plain keys only the last run.
    auto number = [&](const char* adjusted, const char* plain) -> std::pair<double, const char*> {
      for (const char* key : {adjusted, plain}) {
        auto it = lj.find(key);
        if (it == lj.end() || it->is_null()) continue;
        if (!it->is_number()) fail(lf.string(), ": '", key, "' must be a number, got ", it->dump(), kHint);
        return {it->get<double>(), key};
      }
      return {0.0, plain};
    };
    const auto [step, skey] = number("current_steps_adjusted", "current_steps");
    if (!(step >= 0 && step <= 9.0e15 && step == std::floor(step)))
      fail(lf.string(), ": '", skey, "' must be a whole number >= 0, got ", step, kHint);
    const auto [epoch, ekey] = number("epoch_adjusted", "epoch");
    if (!(epoch >= 0 && epoch <= 1e9)) fail(lf.string(), ": '", ekey, "' must be a number from 0 to 1e9, got ", epoch, kHint);
    prev.step = int64_t(step);
    prev.epoch = epoch;
  }
  if (fs::exists(gf)) {
    prev.log = RunLog::from_graph_json(read_json_file(gf), gf.string());
    for (const LogRecord& r : prev.log.records())
      if (!(r.epoch >= 0 && r.epoch <= 1e9))
        fail(gf.string(), ": the entry of current_steps ", r.step, " has 'epoch' ", r.epoch,
             ", expected a number from 0 to 1e9", kHint);
    if (!prev.log.empty()) {
      prev.step = std::max(prev.step, prev.log.records().back().step);
      prev.epoch = std::max(prev.epoch, prev.log.records().back().epoch);
    }
  }
  if (lj.is_object()) carry_notes(prev.log, lj, lf);
  return prev;
}

std::string format_hms(double seconds) {
  if (!std::isfinite(seconds)) return "-:--:--";
  int64_t s = int64_t(std::floor(std::max(0.0, seconds) + 0.5));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                (long long)(s % 60));
  return buf;
}

std::string format_progress(const Progress& p) {
  char buf[96];
  std::string out;
  if (p.total_steps > 0) {
    std::snprintf(buf, sizeof buf, "step %lld/%lld (%.1f%%)", (long long)p.step, (long long)p.total_steps,
                  100.0 * double(p.step) / double(p.total_steps));
  } else {
    std::snprintf(buf, sizeof buf, "step %lld", (long long)p.step);
  }
  out += buf;
  std::snprintf(buf, sizeof buf, " | epoch %.2f", p.epoch);
  out += buf;
  const double done = double(p.step - p.first_step), took = p.elapsed_s - p.first_elapsed_s;
  double rate = (done > 0 && took > 0) ? done / took : NAN;
  if (!std::isfinite(rate)) {
    out += " | - it/s";
  } else {
    std::snprintf(buf, sizeof buf, rate >= 1 ? " | %.2f it/s" : " | %.2f s/it", rate >= 1 ? rate : 1.0 / rate);
    out += buf;
  }
  double eta = (std::isfinite(rate) && p.total_steps > 0) ? double(std::max<int64_t>(0, p.total_steps - p.step)) / rate : NAN;
  out += " | " + format_hms(p.elapsed_s) + " < " + format_hms(eta);
  if (std::isfinite(p.loss)) {
    std::snprintf(buf, sizeof buf, " | loss %.4f", p.loss);
    out += buf;
  } else {
    out += " | loss -";
  }
  std::snprintf(buf, sizeof buf, " | lr %.2e", p.lr);
  out += buf;
  if (std::isfinite(p.grad_norm)) {
    std::snprintf(buf, sizeof buf, " | grad %.3f", p.grad_norm);
    out += buf;
  } else {
    out += " | grad -";
  }
  if (p.tokens_per_s > 0) {
    std::snprintf(buf, sizeof buf, " | %.0f tok/s", p.tokens_per_s);
    out += buf;
  }
  return out;
}

}  // namespace tpro
