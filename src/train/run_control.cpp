// Run control state, the control-file protocol and signal handling; see run_control.h.
#include "train/run_control.h"

#include <signal.h>
#include <unistd.h>

#include <cmath>

#include "core/error.h"
#include "core/file.h"
#include "train/suggest.h"

namespace tpro {

namespace {

using json = nlohmann::json;

const std::vector<std::string>& control_keys() {
  static const std::vector<std::string> k = {"stop", "save_now", "stop_at_loss", "stop_at_epoch"};
  return k;
}

void apply_one(const std::string& key, const json& v, RunControl& ctl, const std::string& where, ControlPoll& out) {
  auto bad = [&](const char* expected) {
    out.errors.push_back(cat(where, ": '", key, "' expects ", expected, ", got ", v.dump()));
  };
  if (key == "stop" || key == "save_now") {
    if (!v.is_boolean()) return bad("true or false");
    if (!v.get<bool>()) return;  // false asks for nothing (a requested stop is not undone)
    if (key == "stop") {
      ctl.request_stop();
      out.applied.push_back("stop requested");
    } else {
      ctl.request_save();
      out.applied.push_back("checkpoint requested");
    }
  } else if (key == "stop_at_loss") {
    if (!v.is_number() || !(v.get<double>() >= 0) || !std::isfinite(v.get<double>()))
      return bad("a number >= 0 (0 = off)");
    ctl.set_stop_at_loss(v.get<double>());
    out.applied.push_back(cat("stop_at_loss = ", v.get<double>()));
  } else if (key == "stop_at_epoch") {
    bool whole = v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
    if (!whole || v.get<double>() < 0 || v.get<double>() > 1e12) return bad("a whole number >= 0 (0 = off)");
    ctl.set_stop_at_epoch(int64_t(v.get<double>()));
    out.applied.push_back(cat("stop_at_epoch = ", int64_t(v.get<double>())));
  } else {
    out.errors.push_back(cat(where, ": unknown key '", key, "'", did_you_mean(key, control_keys()),
                             " (expected ", join_names(control_keys()), ")"));
  }
}

std::atomic<RunControl*> g_signal_target{nullptr};
std::atomic<int> g_signal_count{0};

void say(const char* msg, size_t n) {
  ssize_t r = ::write(STDERR_FILENO, msg, n);
  (void)r;
}

// Async-signal-safe: lock-free atomics, write(2) and _exit(2) only.
void on_stop_signal(int sig) {
  RunControl* ctl = g_signal_target.load();
  if (g_signal_count.fetch_add(1) > 0 || ctl == nullptr) {
    static const char kMsg[] = "\ntpro: interrupted again, exiting now\n";
    say(kMsg, sizeof kMsg - 1);
    ::_exit(128 + sig);
  }
  ctl->request_stop();
  static const char kMsg[] = "\ntpro: stopping after the current step (interrupt again to quit now)\n";
  say(kMsg, sizeof kMsg - 1);
}

}  // namespace

std::string RunControl::stop_reason(double last_loss, double epochs_done) const {
  if (stop_requested()) return "stop requested";
  double sl = stop_at_loss();
  if (sl > 0 && std::isfinite(last_loss) && last_loss <= sl) return cat("loss ", last_loss, " reached stop_at_loss ", sl);
  int64_t se = stop_at_epoch();
  if (se > 0 && epochs_done >= double(se) - 1e-9) return cat("finished epoch ", se, " (stop_at_epoch)");
  return "";
}

ControlPoll apply_control_json(const json& j, RunControl& ctl, const std::string& where) {
  ControlPoll out;
  if (!j.is_object()) {
    out.errors.push_back(cat(where, ": expected a JSON object such as {\"stop\": true}, got ", j.dump()));
    return out;
  }
  for (const auto& [key, value] : j.items()) apply_one(key, value, ctl, where, out);
  return out;
}

ControlPoll ControlFileWatcher::poll(RunControl& ctl) {
  ControlPoll out;
  std::error_code ec;
  if (!fs::exists(file_, ec)) return out;
  fs::path claimed = file_;
  claimed += ".reading-" + std::to_string(::getpid());
  fs::rename(file_, claimed, ec);
  if (ec) {
    if (ec != std::errc::no_such_file_or_directory)
      out.errors.push_back(cat("cannot claim ", file_.string(), ": ", ec.message()));
    return out;
  }
  std::string text;
  try {
    text = read_file(claimed);
  } catch (const Error& e) {
    out.errors.push_back(e.what());
    fs::remove(claimed, ec);
    return out;
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for "1e400" (no byte)
    const auto* pe = dynamic_cast<const json::parse_error*>(&e);
    fs::path bad = file_;
    bad += ".bad";
    fs::rename(claimed, bad, ec);
    out.errors.push_back(cat(file_.string(), ": invalid JSON ", pe ? cat("at byte ", pe->byte) : cat("(", e.what(), ")"),
                             ", kept as ", bad.filename().string(),
                             " (hint: write the command to another file, then rename it to ",
                             file_.filename().string(), ")"));
    return out;
  }
  fs::remove(claimed, ec);
  return apply_control_json(j, ctl, file_.string());
}

void write_control_file(const fs::path& file, const json& command) { write_file_atomic(file, command.dump() + "\n"); }

struct SignalStopper::Saved {
  struct sigaction old_int {}, old_term {};
};

SignalStopper::SignalStopper(RunControl& ctl) : saved_(std::make_unique<Saved>()) {
  RunControl* expected = nullptr;
  if (!g_signal_target.compare_exchange_strong(expected, &ctl))
    fail("a SignalStopper is already installed (only one run may own SIGINT/SIGTERM)");
  g_signal_count.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &saved_->old_int);
  ::sigaction(SIGTERM, &sa, &saved_->old_term);
}

SignalStopper::~SignalStopper() {
  ::sigaction(SIGINT, &saved_->old_int, nullptr);
  ::sigaction(SIGTERM, &saved_->old_term, nullptr);
  g_signal_target.store(nullptr);
}

}  // namespace tpro
