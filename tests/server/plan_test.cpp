// POST /api/plan: the memory plan of a run before Start, from the same body as /api/train:
// its parts, activations sized by the longest row (not cutoff_len), a budget that does not fit
// (the refusal the run would give, naming the flag), and a bad field as a 400.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

TEST(ServerPlan, ReturnsThePlanBeforeStart) {
  TestServer s("plan");
  const json body = {{"model", "tiny"}, {"raw_text_file", "sample.txt"}, {"cutoff_len", 99999}, {"lora_name", "p"}};
  Reply r = s.post("/api/plan", body);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  for (const char* k : {"weights", "adapter", "activations", "workspace", "total"})
    EXPECT_GT(r.body[k].get<size_t>(), 0u) << k;
  EXPECT_LE(r.body["longest_row"].get<int64_t>(), 4096) << "the longest block, not cutoff_len";
  EXPECT_TRUE(r.body["fits"].get<bool>());
  EXPECT_EQ(r.body["refusal"], "");
  EXPECT_THAT(r.body["text"].get<std::string>(), HasSubstr("weights "));
  EXPECT_FALSE(fs::exists(s.dir() / "loras" / "p")) << "planning writes nothing";

  json tight = body;
  tight["memory_limit_gib"] = 1e-6;
  r = s.post("/api/plan", tight);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_FALSE(r.body["fits"].get<bool>());
  EXPECT_THAT(r.body["refusal"].get<std::string>(), HasSubstr("--ignore-memory-check"));

  json bad = body;
  bad["micro_batch_size"] = 0;
  r = s.post("/api/plan", bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "micro_batch_size");
}

TEST(ServerPlan, NeedsNoAdapterName) {
  TestServer s("plan_noname");
  const Reply r = s.post("/api/plan", {{"model", "tiny"}, {"raw_text_file", "sample.txt"}, {"cutoff_len", 64}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_GT(r.body["total"].get<size_t>(), 0u);
  EXPECT_EQ(r.body["refusal"], "");
  EXPECT_FALSE(fs::exists(s.dir() / "loras" / "memory-plan")) << "planning writes nothing";
}
