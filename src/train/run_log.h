// The run's history: one record per logged optimizer step, written as the adapter folder's
// training_graph.json (a list of {current_steps, epoch, loss, learning_rate, ...}, the shape
// Training PRO reads back to resume a graph; tpro adds optional "markers") and training_log.json (the latest state plus run
// metadata, the keys Training PRO's resume reads: current_steps, epoch, loss, learning_rate).
// Plus the one-line console progress. Not here: the PNG (graph.h), deciding when to log.
#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tpro {

// A moment drawn on the graph: a vertical line at `epoch` with a short `label` (kind
// "batch_order": the length-grouped batch order ending). Kept on the record of the first step
// after it, so training_graph.json carries it ("markers") and a resumed run keeps it.
struct LogMarker {
  std::string kind;   // "batch_order"
  std::string label;  // "order: sequential"
  double epoch = 0;   // where it happened, in fractional epochs
  bool operator==(const LogMarker&) const = default;
};

struct LogRecord {
  int64_t step = 0;   // optimizer steps completed (1-based once training has started)
  double epoch = 0;   // fractional epochs completed
  double loss = std::numeric_limits<double>::quiet_NaN();       // NaN = not measured
  double lr = 0;      // learning rate used by this step
  double grad_norm = std::numeric_limits<double>::quiet_NaN();  // before clipping; NaN = unknown
  std::optional<double> eval_loss;
  double tokens_per_s = 0;
  double elapsed_s = 0;  // wall time since the run started
  std::vector<LogMarker> markers;  // what happened before this step's end (usually none)
};

class RunLog {
 public:
  void add(const LogRecord& r);
  // Attaches an evaluation result to the record of `step` (adding a loss-less record if that
  // step has none, e.g. an evaluation before the first step).
  void add_eval(int64_t step, double epoch, double eval_loss);
  // Run metadata for training_log.json (base_model_name, projections, stop_reason, ...).
  void set_info(const std::string& key, nlohmann::json value);
  // Appends {"step", "message"} to training_log.json's "warnings" (divergence, changed
  // parameters on resume, ...), so what the console said stays in the folder.
  void add_warning(int64_t step, const std::string& text);
  // Appends {"step", "kind", "message"} to training_log.json's "events" (e.g. kind
  // "batch_order": the length-grouped phase ending).
  void add_event(int64_t step, const std::string& kind, const std::string& text);

  const std::vector<LogRecord>& records() const { return records_; }
  bool empty() const { return records_.empty(); }

  nlohmann::json graph_json() const;  // training_graph.json
  nlohmann::json log_json() const;    // training_log.json
  // Writes both files into dir atomically (temp file + rename each).
  void write(const std::filesystem::path& dir) const;

  // Reads a training_graph.json back (resume). Throws Error naming the file, entry and key.
  static RunLog from_graph_json(const nlohmann::json& j, const std::string& where = "training_graph.json");
  // dir/training_graph.json, with the "warnings" and "events" of dir/training_log.json when
  // that file is there (so a resumed or continued run keeps them).
  static RunLog load(const std::filesystem::path& dir);

 private:
  std::vector<LogRecord> records_;
  nlohmann::json info_ = nlohmann::json::object();
};

// Where the training of an existing adapter left off, for a run that continues it (Training
// PRO's "continue" when always_override is off): the step and epoch are the largest of
// training_log.json's current_steps_adjusted (Training PRO's count across continued runs) or
// current_steps, its epoch_adjusted or epoch, and the last entry of training_graph.json; the
// log holds the graph's entries and the training_log.json warnings and events, to be appended
// to. Missing files count as nothing logged. Throws Error naming the file and key of a bad value.
struct PreviousRun {
  int64_t step = 0;
  double epoch = 0.0;
  RunLog log;
};
PreviousRun read_previous_run(const std::filesystem::path& dir);

// "1:02:03" (hours unbounded, never negative); "-:--:--" for NaN or infinity.
std::string format_hms(double seconds);

struct Progress {
  int64_t step = 0, total_steps = 0;
  double epoch = 0;
  double elapsed_s = 0;
  double loss = std::numeric_limits<double>::quiet_NaN();
  double lr = 0;
  double grad_norm = std::numeric_limits<double>::quiet_NaN();
  double tokens_per_s = 0;  // 0 = not shown
  // The step and elapsed time this process started from (a resume or a continued adapter): the
  // rate counts only the steps done since, so earlier runs' steps or time do not skew it.
  int64_t first_step = 0;
  double first_elapsed_s = 0;
};

// "step 120/1000 (12.0%) | epoch 0.36 | 1.52 it/s | 0:01:19 < 0:09:39 | loss 1.8342 |
// lr 2.85e-04 | grad 0.412 | 812 tok/s" on one line; below 1 it/s the rate reads "3.21 s/it".
std::string format_progress(const Progress& p);

}  // namespace tpro
