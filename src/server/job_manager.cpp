// The server's job runner; see job_manager.h. Every state change happens under mu_ together
// with the event that announces it, so a snapshot and the events after its last_event_id
// never overlap or leave a hole.
#include "kernels/backend.h"
#include "server/job_manager.h"


#include <algorithm>
#include <cmath>
#include <optional>

#include "core/cpu_info.h"
#include "core/file.h"
#include "formats/load.h"
#include "server/api_error.h"
#include "server/listings.h"
#include "server/sandbox.h"
#include "tokenizer/tokenizer.h"
#include "train/perplexity.h"
#include "train/trainer.h"

namespace tpro {

using nlohmann::json;

namespace {

constexpr size_t kMaxMessages = 500;
constexpr const char* kBatchOrderPrefix = "batch order: ";  // trainer.cpp's say_switch

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

bool is_active(const std::string& state) { return state == "running" || state == "stopping"; }

// A folder as given and with its links followed, both normalised: a run reached through a
// link and its target are both in use.
void note_in_use(std::vector<std::filesystem::path>& in_use, const std::filesystem::path& dir) {
  in_use.push_back(dir.lexically_normal());
  try {
    in_use.push_back(resolve_links(dir));
  } catch (const std::exception&) {
  }
}

}  // namespace

JobManager::~JobManager() { stop_and_wait(); }

void JobManager::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (ctl_ && is_active(st_.state)) ctl_->request_stop();
}

void JobManager::stop_and_wait() {
  std::thread worker;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;  // a request still in flight cannot start another job
    if (ctl_ && is_active(st_.state)) ctl_->request_stop();
    worker = std::move(worker_);
  }
  if (worker.joinable()) worker.join();
}

bool JobManager::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return is_active(st_.state);
}

void JobManager::unless_in_use(const std::filesystem::path& dir, const std::string& what,
                               const std::function<void()>& f) {
  std::lock_guard<std::mutex> lock(mu_);
  if (is_active(st_.state)) {
    const auto d = dir.lexically_normal();
    for (const auto& p : st_.in_use) {
      if (p != d) continue;
      const char* doing = st_.kind == "train" ? "training it" : st_.kind == "export" ? "exporting it" : "evaluating it";
      conflict(cat(what, " is in use: job ", st_.id, " (", st_.kind, ", started ", st_.started_at, ") is ", doing,
                   " (hint: stop that job or wait for it to end, then try again)"));
    }
  }
  f();
}

void JobManager::publish(const std::string& type, json data) { events_.publish(type, data); }

void JobManager::keep_message(const std::string& text) {
  if (st_.messages.size() >= kMaxMessages) st_.messages.erase(st_.messages.begin());
  st_.messages.push_back(text);
}

void JobManager::add_message(const std::string& text) {
  keep_message(text);
  publish("message", {{"text", text}});
}

void JobManager::begin(const std::string& kind, const json& params) {
  if (closing_) throw ApiError(503, "unavailable", "the server is shutting down; no new job starts");
  if (is_active(st_.state)) {
    const std::string what = st_.kind == "train" ? cat("training run '", st_.params.value("lora_name", ""), "'")
                                                 : std::string("perplexity evaluation");
    conflict(cat("a ", what, " is already running (job ", st_.id, ", started ", st_.started_at,
                 "); only one job runs at a time: stop it or wait for it to finish"));
  }
  // The previous worker has published its final state and returns without taking mu_ again.
  if (worker_.joinable()) worker_.join();
  st_ = State{};
  st_.id = next_job_id_++;
  st_.kind = kind;
  st_.state = "running";
  st_.params = params;
  st_.started_at = now_iso8601();
  ctl_ = std::make_unique<RunControl>();
  events_.mark_job_start();
  publish("state", summary());
}

json JobManager::start_training(const TrainParams& p) {
  std::lock_guard<std::mutex> lock(mu_);
  begin("train", to_json(p));
  note_in_use(st_.in_use, adapter_dir(p));
  worker_ = std::thread([this, p] { run_training_job(p); });
  return summary();
}

json JobManager::start_perplexity(const PerplexityJob& job) { return start_perplexity_queue({job}, json::array()); }

json JobManager::start_perplexity_queue(const std::vector<PerplexityJob>& items, const json& skipped) {
  if (items.empty()) fail("start_perplexity_queue: no items");
  std::lock_guard<std::mutex> lock(mu_);
  const PerplexityJob& first = items.front();
  begin("perplexity", {{"model", first.model_name},
                       {"lora", first.lora_name},
                       {"text_file", first.dataset_name},
                       {"stride", first.stride},
                       {"max_length", first.max_length},
                       {"comment", first.comment},
                       {"items", items.size()}});
  for (const PerplexityJob& j : items) {
    st_.queue.push_back({{"model", j.model_name}, {"lora", j.lora_name}, {"text_file", j.dataset_name},
                         {"stride", j.stride}, {"max_length", j.max_length}, {"state", "pending"}});
    if (!j.lora.empty()) note_in_use(st_.in_use, j.lora);
  }
  st_.skipped = skipped;
  publish("state", summary());  // begin() announced the job before its queue was filled
  worker_ = std::thread([this, items] { run_perplexity_queue(items); });
  return summary();
}

json JobManager::start_export(const ExportJob& job) {
  std::lock_guard<std::mutex> lock(mu_);
  begin("export", {{"kind", export_kind_name(job.kind)},
                   {"lora", job.lora_name},
                   {"model", job.model_name},
                   {"out", job.out_name},
                   {"dtype", job.dtype},
                   {"include_checkpoints", job.include_checkpoints}});
  note_in_use(st_.in_use, job.lora);
  worker_ = std::thread([this, job] { run_export_job(job); });
  return summary();
}

json JobManager::request_stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!is_active(st_.state)) conflict("no job is running, nothing to stop");
  ctl_->request_stop();
  if (st_.state == "running") {
    st_.state = "stopping";
    publish("state", summary());
  }
  return summary();
}

json JobManager::request_save() {
  std::lock_guard<std::mutex> lock(mu_);
  if (st_.kind != "train" || !is_active(st_.state)) conflict("no training run is active, nothing to save");
  ctl_->request_save();
  add_message("checkpoint requested: it is saved after the current step");
  return summary();
}

json JobManager::set_stops(std::optional<double> loss, std::optional<int64_t> epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (st_.kind != "train" || !is_active(st_.state)) conflict("no training run is active to change its stops");
  if (loss) ctl_->set_stop_at_loss(*loss);
  if (epoch) ctl_->set_stop_at_epoch(*epoch);
  json c = summary()["control"];
  add_message(cat("stops changed: stop_at_loss = ", ctl_->stop_at_loss(), ", stop_at_epoch = ",
                  ctl_->stop_at_epoch()));
  publish("control", c);
  return summary();
}

void JobManager::on_train_event(const TrainEvent& e) {
  std::lock_guard<std::mutex> lock(mu_);
  st_.total_steps = e.total_steps;
  switch (e.kind) {
    case TrainEvent::Kind::Message:
    case TrainEvent::Kind::Done:
      add_message(e.text);
      // The batch order's switch (training_log.json's "events", kind batch_order) is marked
      // on the chart at the step it followed.
      if (e.text.rfind(kBatchOrderPrefix, 0) == 0 && st_.events.size() < kMaxMessages) {
        json ev = {{"step", st_.records.empty() ? 0 : st_.records.back().step}, {"kind", "batch_order"},
                   {"message", e.text}};
        st_.events.push_back(ev);
        publish("run_event", ev);
      }
      break;
    case TrainEvent::Kind::Step: {
      const auto now = std::chrono::steady_clock::now();
      const LogRecord& r = e.record;
      if (st_.first_step < 0) {
        st_.first_step = r.step;
        st_.t_first_step = now;
      } else {
        const double dt = std::chrono::duration<double>(now - st_.t_first_step).count();
        st_.it_per_s = dt > 0 ? double(r.step - st_.first_step) / dt : 0.0;
        st_.eta_s = st_.it_per_s > 0 ? double(st_.total_steps - r.step) / st_.it_per_s : -1.0;
      }
      st_.records.push_back(r);
      json j = chart_record(r);
      j["total_steps"] = st_.total_steps;
      j["it_per_s"] = st_.it_per_s;
      j["eta_s"] = st_.eta_s;
      publish("step", j);
      break;
    }
    case TrainEvent::Kind::Eval: {
      auto it = std::find_if(st_.records.rbegin(), st_.records.rend(),
                             [&](const LogRecord& r) { return r.step == e.record.step; });
      if (it != st_.records.rend()) it->eval_loss = e.record.eval_loss;
      else st_.records.push_back(e.record);
      // The eval event carries its line to live pages; the snapshot keeps it for later ones.
      keep_message(e.text);
      json j = chart_record(e.record);
      j["text"] = e.text;
      publish("eval", j);
      break;
    }
    case TrainEvent::Kind::Checkpoint: {
      // text is "<folder> (<why>)"
      const size_t cut = e.text.rfind(" (");
      const std::string dir = e.text.substr(0, cut);
      st_.checkpoints.push_back(dir);
      add_message("checkpoint saved: " + e.text);  // in the log that a reconnecting page replays
      publish("checkpoint", {{"path", dir}, {"text", e.text}});
      break;
    }
  }
}

void JobManager::run_training_job(TrainParams p) {
  RunControl& ctl = *ctl_;  // not replaced while this job is active
  try {
    TrainSummary s = run_training(p, ctl, [this](const TrainEvent& e) { on_train_event(e); });
    const bool stopped = s.stopped;
    finish(stopped ? "stopped" : "finished", "",  // the trainer's Done message said it
           {{"stop_reason", s.stop_reason},
            {"result", {{"adapter", s.adapter_dir.string()}, {"steps", s.steps}, {"final_loss", s.final_loss}}}});
  } catch (const std::exception& e) {
    finish("failed", e.what(), json::object());
  }
}

json JobManager::run_one_perplexity(const PerplexityJob& job, RunControl& ctl) {
  auto say = [this](const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    add_message(text);
  };
  apply_thread_count(job.threads);
  say(cat("loading model ", job.model_name));
  Model model = load_model(job.model);
  Tokenizer tok = Tokenizer::load(job.model);
  std::optional<LoraWeights> lora;
  if (!job.lora.empty()) {
    say(cat("loading adapter ", job.lora_name));
    lora = load_lora(job.lora, model.cfg);
  }
  const std::vector<int32_t> ids = tok.encode(read_file(job.text_file), true);
  const std::unique_ptr<Backend> be = make_backend(job.device);
  const PerplexityResult r = evaluate_perplexity(
      *be, model, lora ? &*lora : nullptr, ids, job.stride, job.max_length, [&](int64_t done, int64_t total) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          st_.progress_done = done;
          st_.progress_total = total;
          publish("progress", {{"done", done}, {"total", total}, {"item", st_.progress_item}});
        }
        // The engine has no cancel of its own: a stop ends it between two windows.
        if (ctl.stop_requested()) fail("perplexity evaluation stopped after ", done, " of ", total, " windows");
      });
  const int64_t n_tokens = int64_t(ids.size());
  append_evaluation_csv(job.csv, {job.model_name, job.lora_name, job.dataset_name, job.comment, now_iso8601(),
                                  r.perplexity(), job.stride, job.max_length, n_tokens});
  say(cat("perplexity ", r.perplexity(), " over ", r.n_scored, " tokens in ", r.n_windows, " windows"));
  return {{"perplexity", r.perplexity()}, {"nll", r.mean_nll()}, {"tokens", n_tokens},
          {"scored", r.n_scored},         {"windows", r.n_windows}, {"max_length", job.max_length}};
}

void JobManager::run_perplexity_queue(std::vector<PerplexityJob> items) {
  RunControl& ctl = *ctl_;
  int64_t done = 0, failed = 0;
  json last;
  std::string last_error;
  auto set_item = [&](size_t i, json change) {
    std::lock_guard<std::mutex> lock(mu_);
    st_.queue[i].update(change);
    publish("state", summary());
  };
  for (size_t i = 0; i < items.size(); ++i) {
    if (ctl.stop_requested()) {
      set_item(i, {{"state", "stopped"}});
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      st_.progress_item = int64_t(i);
      st_.progress_done = st_.progress_total = 0;
      if (items.size() > 1)
        add_message(cat("evaluating ", i + 1, " of ", items.size(), ": ", items[i].model_name,
                        items[i].lora_name.empty() ? std::string() : " + " + items[i].lora_name));
    }
    set_item(i, {{"state", "running"}});
    try {
      last = run_one_perplexity(items[i], ctl);
      ++done;
      set_item(i, {{"state", "done"}, {"perplexity", last["perplexity"]}});
    } catch (const std::exception& e) {
      last_error = e.what();
      if (ctl.stop_requested()) {
        set_item(i, {{"state", "stopped"}, {"error", last_error}});
      } else {
        ++failed;
        set_item(i, {{"state", "failed"}, {"error", last_error}});
        if (items.size() > 1) {
          std::lock_guard<std::mutex> lock(mu_);
          add_message(cat("failed: ", last_error));
        }
      }
    }
  }
  int64_t skipped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    skipped = int64_t(st_.skipped.size());
  }
  const std::string tally = cat("evaluated ", done, ", skipped ", skipped, " (already in evaluations.csv)",
                                failed ? cat(", failed ", failed) : std::string());
  if (ctl.stop_requested()) {
    finish("stopped", last_error.empty() ? tally : cat(last_error, "; ", tally), json::object());
  } else if (done == 0) {
    finish("failed", items.size() == 1 ? last_error : cat(tally, "; last error: ", last_error), json::object());
  } else {
    last["evaluated"] = done;
    last["failed"] = failed;
    last["skipped"] = skipped;
    finish("finished", items.size() > 1 || skipped ? tally : std::string(), {{"result", last}});
  }
}

void JobManager::run_export_job(ExportJob job) {
  RunControl& ctl = *ctl_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    add_message(cat("export (", export_kind_name(job.kind), ") of ", job.lora_name, " to ", job.out_name));
  }
  std::string last_what;
  try {
    const json r = run_export(job, [&](int64_t done, int64_t total, const std::string& what) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        st_.progress_done = done;
        st_.progress_total = total;
        st_.progress_what = what;
        // Stages are messages; a zip's per-file lines stay in the progress event only.
        if (job.kind != ExportKind::Zip && what != last_what) add_message(what);
        last_what = what;
        publish("progress", {{"done", done}, {"total", total}, {"what", what}});
      }
      if (ctl.stop_requested()) fail("export stopped: ", job.out_name, " was not written");
    });
    finish("finished", cat("exported ", job.lora_name, " to ", job.out_name), {{"result", r}});
  } catch (const std::exception& e) {
    finish(ctl.stop_requested() ? "stopped" : "failed", e.what(), json::object());
  }
}

void JobManager::finish(const std::string& state, const std::string& text, json extra) {
  std::lock_guard<std::mutex> lock(mu_);
  st_.state = state;
  st_.finished_at = now_iso8601();
  if (extra.contains("stop_reason")) st_.stop_reason = extra["stop_reason"].get<std::string>();
  if (extra.contains("result")) st_.result = extra["result"];
  if (state == "failed") {
    st_.error = text;
    st_.error_field = field_in_message(text);
  }
  if (!text.empty()) add_message(text);
  publish("state", summary());
}

json JobManager::summary() const {
  json j = {{"id", st_.id}, {"kind", st_.kind}, {"state", st_.state}, {"started_at", st_.started_at},
            {"finished_at", st_.finished_at}, {"total_steps", st_.total_steps}, {"it_per_s", st_.it_per_s},
            {"eta_s", st_.eta_s}, {"stop_reason", st_.stop_reason}, {"error", st_.error},
            {"error_field", st_.error_field}, {"result", st_.result}};
  if (st_.kind == "train") j["lora_name"] = st_.params.value("lora_name", "");
  if (!st_.records.empty()) {
    const LogRecord& r = st_.records.back();
    j["step"] = r.step;
    j["epoch"] = r.epoch;
    j["loss"] = number_or_null(r.loss);
    j["lr"] = r.lr;
    j["elapsed_s"] = r.elapsed_s;
  }
  if (st_.kind == "perplexity" || st_.kind == "export")
    j["progress"] = {{"done", st_.progress_done}, {"total", st_.progress_total}, {"what", st_.progress_what}};
  if (st_.kind == "perplexity") {
    j["progress"]["item"] = st_.progress_item;
    j["queue"] = st_.queue;
    j["skipped"] = st_.skipped;
  }
  if (st_.kind == "export") j["export"] = st_.params;
  if (ctl_) j["control"] = {{"stop_at_loss", ctl_->stop_at_loss()}, {"stop_at_epoch", ctl_->stop_at_epoch()}};
  return j;
}

json JobManager::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  json j = summary();
  j["params"] = st_.params;
  json recs = json::array();
  for (const auto& r : st_.records) recs.push_back(chart_record(r));
  j["records"] = std::move(recs);
  j["messages"] = st_.messages;
  j["checkpoints"] = st_.checkpoints;
  j["events"] = st_.events;
  j["last_event_id"] = events_.last_id();
  return j;
}

}  // namespace tpro
