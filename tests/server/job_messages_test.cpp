// What /api/job keeps for a page that opens later: the eval-loss lines (sent live only in
// "eval" events) are among its messages; a failing resume names no field when its message is
// about none (the form shows it as a banner); and a GGUF base model trains like a folder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

json short_run(const std::string& name, int64_t steps) {
  json b = endless_run(name);
  b["max_steps"] = steps;
  return b;
}

std::string joined(const json& messages) {
  std::string all;
  for (const auto& m : messages) all += m.get<std::string>() + "\n";
  return all;
}

}  // namespace

TEST(JobMessages, EvalLinesAreInTheSnapshot) {
  TestServer s("evalmsg");
  json b = short_run("ev", 4);
  b["eval_steps"] = 2;
  b["eval_split_percent"] = 20;
  ASSERT_EQ(s.post("/api/train", b).status, 202);
  const json done = wait_for_state(s, is_done);
  ASSERT_EQ(done["state"], "finished") << done.dump();
  const json snap = s.get("/api/job").body;
  int evals = 0;
  for (const auto& m : snap["messages"]) evals += m.get<std::string>().rfind("eval loss ", 0) == 0;
  EXPECT_EQ(evals, 2) << joined(snap["messages"]);  // steps 2 and 4
  EXPECT_THAT(joined(snap["messages"]), testing::ContainsRegex("eval loss [0-9.]+, perplexity [0-9.]+\n"));
}

TEST(JobMessages, AFailedResumeAboutNoFieldNamesNone) {
  TestServer s("resumefail");
  json b = short_run("res", 2);
  b["save_steps"] = 1;
  ASSERT_EQ(s.post("/api/train", b).status, 202);
  ASSERT_EQ(wait_for_state(s, is_done)["state"], "finished");
  // Another cutoff_len slices the text into another number of blocks: the batch order saved
  // in the checkpoint does not fit, and the hint mentions "dataset", which is no field here.
  b["resume_from_checkpoint"] = "latest";
  b["cutoff_len"] = 32;
  ASSERT_EQ(s.post("/api/train", b).status, 202);
  const json failed = wait_for_state(s, is_done);
  ASSERT_EQ(failed["state"], "failed");
  EXPECT_THAT(failed["error"].get<std::string>(),
              HasSubstr("batcher state was saved with rows = "));
  EXPECT_THAT(failed["error"].get<std::string>(), HasSubstr("(hint: resume with the same dataset and batch settings)"));
  EXPECT_EQ(failed["error_field"], "");
}

TEST(JobMessages, AGgufBaseModelTrains) {
  TestServer s("ggufrun");
  json b = short_run("from-gguf", 3);
  b["model"] = "tiny.gguf";
  const Reply r = s.post("/api/train", b);
  ASSERT_EQ(r.status, 202) << r.body.dump();
  const json done = wait_for_state(s, is_done);
  ASSERT_EQ(done["state"], "finished") << done.dump();
  EXPECT_EQ(done["step"], 3);
  EXPECT_TRUE(fs::exists(s.dir() / "loras" / "from-gguf" / "adapter_model.safetensors"));
  EXPECT_EQ(done["params"]["model"], fs::canonical(s.dir() / "models" / "tiny.gguf").string());
}
