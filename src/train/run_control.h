// Run control: state the trainer reads at step boundaries (stop, save_now, stop_at_loss,
// stop_at_epoch) and the two CLI ways to write it: a control file in the output folder that is
// consumed when read ({"stop": true}, {"save_now": true}, {"stop_at_loss": 1.2},
// {"stop_at_epoch": 2}), and SIGINT/SIGTERM (first: stop after the step; second: exit now).
// The HTTP server writes the same RunControl directly. Not here: what a stop or save does.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/cancel.h"

namespace tpro {

class RunControl {
 public:
  void request_stop() { stop_.store(true); }
  bool stop_requested() const { return stop_.load(); }
  // The stop request as a cancellation flag for long phases (loading, slicing, a step).
  const CancelFlag* stop_flag() const { return &stop_; }
  void request_save() { save_.store(true); }
  bool take_save_request() { return save_.exchange(false); }  // true once per request
  void set_stop_at_loss(double loss) { stop_loss_.store(loss > 0 ? loss : 0.0); }  // 0 = off
  double stop_at_loss() const { return stop_loss_.load(); }
  void set_stop_at_epoch(int64_t epoch) { stop_epoch_.store(epoch > 0 ? epoch : 0); }  // 0 = off
  int64_t stop_at_epoch() const { return stop_epoch_.load(); }

  // Why the run should end after this step, or "" to go on: a stop request, last_loss at or
  // below stop_at_loss (Training PRO's rule), or epochs_done reaching stop_at_epoch.
  std::string stop_reason(double last_loss, double epochs_done) const;

 private:
  // Lock-free so the signal handler may write stop_.
  static_assert(std::atomic<bool>::is_always_lock_free);
  std::atomic<bool> stop_{false}, save_{false};
  std::atomic<double> stop_loss_{0.0};
  std::atomic<int64_t> stop_epoch_{0};
};

struct ControlPoll {
  std::vector<std::string> applied;  // "stop requested", "stop_at_loss = 1.2", ...
  std::vector<std::string> errors;   // bad file or keys: report them, keep training
  bool empty() const { return applied.empty() && errors.empty(); }
};

// Applies one command object; problems (unknown key with a did-you-mean, wrong type, negative
// value) go to errors, valid keys are still applied.
ControlPoll apply_control_json(const nlohmann::json& j, RunControl& ctl, const std::string& where);

// Watches <output>/control.json. poll() claims the file by renaming it (so a command written
// while we read is not lost), applies it and deletes it; an unparsable file is kept as
// control.json.bad and reported. Writers should write elsewhere and rename into place
// (write_control_file does).
class ControlFileWatcher {
 public:
  explicit ControlFileWatcher(std::filesystem::path file) : file_(std::move(file)) {}
  const std::filesystem::path& path() const { return file_; }
  ControlPoll poll(RunControl& ctl);

 private:
  std::filesystem::path file_;
};

inline constexpr const char* kControlFileName = "control.json";
void write_control_file(const std::filesystem::path& file, const nlohmann::json& command);

// While alive, SIGINT and SIGTERM request a stop on ctl and print a note; a second signal
// exits at once with 128 + signal. Restores the previous handlers on destruction. One at a time.
class SignalStopper {
 public:
  explicit SignalStopper(RunControl& ctl);
  ~SignalStopper();
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

 private:
  struct Saved;  // the previous sigactions
  std::unique_ptr<Saved> saved_;
};

}  // namespace tpro
