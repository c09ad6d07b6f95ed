// Stop ends a training job at every moment, also before its first step (while the model loads
// or the text is sliced): the job reaches "stopped", never stays at "stopping", and a job stopped
// before any step writes no adapter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "server_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

json wait_done(const TestServer& s) {
  json last;
  for (int i = 0; i < 600; ++i) {  // 60 s at most
    last = s.get("/api/job").body;
    const std::string st = last.value("state", "");
    if (st == "finished" || st == "stopped" || st == "failed") return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "the job did not end: " << last.dump();
  return last;
}

TEST(JobStop, StopRightAfterStartEndsTheJob) {
  TestServer s("stop_early");
  // A long text (the slicer polls the stop per document): many files in one folder.
  fs::create_directories(s.dir() / "data" / "many");
  for (int i = 0; i < 200; ++i)
    write_file_atomic(s.dir() / "data" / "many" / (std::to_string(i) + ".txt"),
                      std::string(4000, 'a') + ". The end of file " + std::to_string(i) + ".\n");
  json b = endless_run("early");
  b["raw_text_file"] = "many";
  ASSERT_EQ(s.post("/api/train", b).status, 202);
  ASSERT_EQ(s.post("/api/stop", json::object()).status, 200);
  const json done = wait_done(s);
  EXPECT_EQ(done["state"], "stopped") << done.dump();
  const std::string why = done.value("stop_reason", "");
  if (why.rfind("stopped ", 0) == 0) {  // before the first step: nothing written
    EXPECT_FALSE(fs::exists(s.dir() / "loras" / "early" / "adapter_model.safetensors"));
    EXPECT_FALSE(fs::exists(s.dir() / "loras" / "early"));
  } else {
    EXPECT_EQ(why, "stop requested");
  }
}

}  // namespace
