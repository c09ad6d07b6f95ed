// train/run_control: the control-file protocol (each command, consumption, bad files and
// keys), stop rules, and SIGINT handling (first signal stops, second exits).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "train/run_control.h"

using namespace tpro;
using json = nlohmann::json;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("tpro_ctl_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

bool any_has(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& e : v)
    if (e.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(RunControl, StateAndStopRules) {
  RunControl c;
  EXPECT_EQ(c.stop_reason(2.0, 0.5), "");
  EXPECT_FALSE(c.take_save_request());
  c.request_save();
  EXPECT_TRUE(c.take_save_request());
  EXPECT_FALSE(c.take_save_request());  // consumed
  c.set_stop_at_loss(1.5);
  EXPECT_EQ(c.stop_reason(1.6, 0.5), "");
  EXPECT_NE(c.stop_reason(1.5, 0.5).find("stop_at_loss"), std::string::npos);  // at or below, as Training PRO
  EXPECT_EQ(c.stop_reason(NAN, 0.5), "");
  c.set_stop_at_loss(-1);
  EXPECT_EQ(c.stop_at_loss(), 0.0);
  c.set_stop_at_epoch(2);
  EXPECT_EQ(c.stop_reason(1.0, 1.99), "");
  EXPECT_EQ(c.stop_reason(1.0, 2.0), "finished epoch 2 (stop_at_epoch)");
  c.request_stop();
  EXPECT_EQ(c.stop_reason(1.0, 0.1), "stop requested");
}

TEST(ControlFile, EachCommandIsAppliedAndConsumed) {
  fs::path dir = temp_dir("cmds");
  ControlFileWatcher w(dir / kControlFileName);
  RunControl c;
  EXPECT_TRUE(w.poll(c).empty());  // no file, nothing to do

  write_control_file(w.path(), json{{"save_now", true}});
  ControlPoll p = w.poll(c);
  EXPECT_EQ(p.applied, std::vector<std::string>{"checkpoint requested"});
  EXPECT_TRUE(p.errors.empty());
  EXPECT_FALSE(fs::exists(w.path()));
  EXPECT_TRUE(c.take_save_request());
  EXPECT_TRUE(w.poll(c).empty());  // consumed: not applied twice

  write_control_file(w.path(), json{{"stop_at_loss", 1.2}, {"stop_at_epoch", 2}});
  p = w.poll(c);
  EXPECT_EQ(p.applied.size(), 2u);
  EXPECT_DOUBLE_EQ(c.stop_at_loss(), 1.2);
  EXPECT_EQ(c.stop_at_epoch(), 2);
  EXPECT_FALSE(c.stop_requested());

  write_control_file(w.path(), json{{"stop", true}});
  p = w.poll(c);
  EXPECT_EQ(p.applied, std::vector<std::string>{"stop requested"});
  EXPECT_TRUE(c.stop_requested());
  for (auto& e : fs::directory_iterator(dir)) ADD_FAILURE() << "left behind: " << e.path();
  fs::remove_all(dir);
}

TEST(ControlFile, BadFilesAndKeysAreReportedNotFatal) {
  fs::path dir = temp_dir("bad");
  ControlFileWatcher w(dir / kControlFileName);
  RunControl c;
  write_file_atomic(w.path(), "{\"stop\": tru");
  ControlPoll p = w.poll(c);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_TRUE(any_has(p.errors, "control.json: invalid JSON at byte")) << p.errors[0];
  EXPECT_TRUE(any_has(p.errors, "kept as control.json.bad"));
  EXPECT_FALSE(fs::exists(w.path()));
  EXPECT_TRUE(fs::exists(dir / "control.json.bad"));
  EXPECT_FALSE(c.stop_requested());

  write_control_file(w.path(), json{{"stopp", true}, {"stop_at_loss", 0.9}});
  p = w.poll(c);
  EXPECT_TRUE(any_has(p.errors, "unknown key 'stopp' (did you mean 'stop'?)"));
  EXPECT_EQ(p.applied, std::vector<std::string>{"stop_at_loss = 0.9"});  // the valid key still applies

  write_control_file(w.path(), json{{"stop", "yes"}, {"stop_at_epoch", -1}, {"stop_at_loss", "low"}});
  p = w.poll(c);
  EXPECT_TRUE(any_has(p.errors, "'stop' expects true or false, got \"yes\""));
  EXPECT_TRUE(any_has(p.errors, "'stop_at_epoch' expects a whole number >= 0 (0 = off), got -1"));
  EXPECT_TRUE(any_has(p.errors, "'stop_at_loss' expects a number >= 0"));
  EXPECT_FALSE(c.stop_requested());

  write_control_file(w.path(), json::array({1}));
  EXPECT_TRUE(any_has(w.poll(c).errors, "expected a JSON object such as {\"stop\": true}"));
  fs::remove_all(dir);
}

TEST(Signals, FirstInterruptRequestsStop) {
  struct sigaction before {};
  sigaction(SIGINT, nullptr, &before);
  RunControl c;
  {
    SignalStopper s(c);
    EXPECT_THROW(SignalStopper second(c), Error);  // one owner at a time
    raise(SIGINT);
    EXPECT_TRUE(c.stop_requested());
  }
  struct sigaction after {};
  sigaction(SIGINT, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);  // restored
  RunControl d;
  SignalStopper again(d);  // can be installed again after the first went away
  raise(SIGTERM);
  EXPECT_TRUE(d.stop_requested());
}

TEST(SignalsDeathTest, SecondInterruptExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        RunControl c;
        SignalStopper s(c);
        raise(SIGINT);
        raise(SIGINT);
        std::exit(0);  // not reached
      },
      testing::ExitedWithCode(128 + SIGINT), "interrupted again, exiting now");
}

// A number beyond double is nlohmann's out_of_range, not parse_error: still a reported bad file.
TEST(ControlFile, NumberBeyondDoubleIsABadFile) {
  fs::path dir = temp_dir("huge");
  ControlFileWatcher w(dir / kControlFileName);
  RunControl c;
  write_file_atomic(w.path(), "{\"stop_at_loss\": 1e400}");
  ControlPoll p = w.poll(c);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_TRUE(any_has(p.errors, "control.json: invalid JSON ([json.exception.out_of_range.406] number overflow"))
      << p.errors[0];
  EXPECT_TRUE(any_has(p.errors, "kept as control.json.bad"));
  fs::remove_all(dir);
}
