// One job at a time for the server: a training run (train/trainer.h), a queue of perplexity
// evaluations run one after another (train/perplexity.h) or an export (export.h) on a worker
// thread, steered through its RunControl (stop,
// save now, stop_at_loss, stop_at_epoch) and watched through events published to an
// EventBuffer, with a snapshot (state, chart records, messages, checkpoints) for clients
// that (re)connect. A second start while a job runs is a 409; the job outlives every
// client. Not here: HTTP, parsing requests (request.h).
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/event_buffer.h"
#include "server/export.h"
#include "train/params.h"
#include "train/run_control.h"
#include "train/run_log.h"

namespace tpro {

struct TrainEvent;

struct PerplexityJob {
  std::filesystem::path model, lora, text_file;  // lora empty = base model only
  int64_t stride = 512, max_length = 2048;  // both resolved by the request (max_length 0 = the context)
  int64_t threads = 0;                       // 0 = the physical cores (apply_thread_count)
  std::string device = "cpu";               // the Backend it runs on
  std::string comment;
  std::filesystem::path csv;  // evaluations.csv the result is appended to
  // Names shown in the results table (relative to the served folders).
  std::string model_name, lora_name, dataset_name;
};

class JobManager {
 public:
  explicit JobManager(EventBuffer& events) : events_(events) {}
  ~JobManager();  // stops a running job (a training run still saves) and waits for it
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Start a job; ApiError 409 naming the running job when one is active. Return the snapshot.
  nlohmann::json start_training(const TrainParams& p);
  nlohmann::json start_perplexity(const PerplexityJob& job);  // a queue of one
  // Evaluates each item in turn, appending each result to its csv as it comes; an item that
  // fails is reported and the next one runs; a stop ends the queue. `skipped` (what the request
  // left out as already evaluated) is shown with the queue. The snapshot's "queue" lists the
  // items with their state (pending, running, done, failed, stopped) and perplexity or error.
  nlohmann::json start_perplexity_queue(const std::vector<PerplexityJob>& items, const nlohmann::json& skipped);
  nlohmann::json start_export(const ExportJob& job);

  // Steering the active job; ApiError 409 when there is none (or it cannot do that).
  nlohmann::json request_stop();
  nlohmann::json request_save();
  nlohmann::json set_stops(std::optional<double> stop_at_loss, std::optional<int64_t> stop_at_epoch);

  // {id, kind, state, ..., records, messages, checkpoints, last_event_id}; state is "idle"
  // before the first job, then running / stopping / finished / stopped / failed.
  nlohmann::json snapshot() const;
  bool busy() const;
  // Runs f (a rename that takes an adapter folder away) while no active job uses `dir` (written
  // by a training run, read by an evaluation or an export): the check and f happen under the
  // job lock, so no job can start on dir in between. ApiError 409 naming the job otherwise.
  void unless_in_use(const std::filesystem::path& dir, const std::string& what, const std::function<void()>& f);
  void cancel();         // asks an active job to stop; no-op when idle; never throws
  // cancel(), refuse new jobs from now on, and wait for the worker (the destructor does this).
  void stop_and_wait();

 private:
  void begin(const std::string& kind, const nlohmann::json& params);  // mu_ held
  void publish(const std::string& type, nlohmann::json data);         // mu_ held
  void add_message(const std::string& text);                          // mu_ held: kept and published
  void keep_message(const std::string& text);                         // mu_ held: in snapshots only
  void on_train_event(const TrainEvent& e);
  void run_training_job(TrainParams p);
  void run_perplexity_queue(std::vector<PerplexityJob> items);
  nlohmann::json run_one_perplexity(const PerplexityJob& job, RunControl& ctl);  // its result; throws
  void run_export_job(ExportJob job);
  void finish(const std::string& state, const std::string& text, nlohmann::json extra);
  nlohmann::json summary() const;  // mu_ held: the small part of the snapshot

  EventBuffer& events_;
  mutable std::mutex mu_;
  std::thread worker_;
  std::unique_ptr<RunControl> ctl_;  // fresh per job; read by the worker, written by requests
  int64_t next_job_id_ = 1;
  bool closing_ = false;  // set by stop_and_wait
  struct State {
    int64_t id = 0;
    std::string kind, state = "idle", stop_reason, error, error_field;
    nlohmann::json params, result;
    std::vector<LogRecord> records;
    std::vector<std::string> messages, checkpoints;
    nlohmann::json events = nlohmann::json::array();  // {step, kind, message}: batch-order switches
    int64_t total_steps = 0;
    std::string started_at, finished_at;
    std::chrono::steady_clock::time_point t_first_step;
    int64_t first_step = -1;
    double it_per_s = 0, eta_s = -1;
    int64_t progress_done = 0, progress_total = 0;  // perplexity windows, export bytes or stages
    int64_t progress_item = 0;                      // perplexity: the queue item running
    std::string progress_what;                      // export: what it does now
    nlohmann::json queue = nlohmann::json::array();    // perplexity: one entry per item
    nlohmann::json skipped = nlohmann::json::array();  // perplexity: left out as already evaluated
    std::vector<std::filesystem::path> in_use;  // adapter folders the job writes or reads (as given and resolved)
  } st_;
};

}  // namespace tpro
