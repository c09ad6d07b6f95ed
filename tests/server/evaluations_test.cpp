// The Perplexity tab's queue and results: models x adapters evaluated one after another in one
// job with a state per item; combinations already in evaluations.csv for the same text file,
// stride and max_length are skipped (and counted) unless redo; an item that fails does not stop
// the others; comments are saved back to evaluations.csv in place, checked and bounded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "server/evaluations.h"
#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::test;
using testing::HasSubstr;

namespace {

void make_adapter(const TestServer& s, const std::string& name, uint64_t seed) {
  const LlamaConfig cfg = load_model_config(s.dir() / "models" / "tiny");
  LoraConfig lc;
  lc.r = 2;
  lc.alpha = 4;
  lc.targets = parse_targets("q-v");
  Rng rng(seed);
  LoraWeights lw = make_lora(cfg, lc, rng);
  for (auto& p : lw.params) p = float(rng.uniform(-0.3, 0.3));
  save_adapter(s.dir() / "loras" / name, lw, "tiny");
}

json queue_body(const json& loras) {
  return {{"models", {"tiny"}}, {"loras", loras}, {"text_file", "short.txt"}, {"stride", 16}, {"max_length", 32},
          {"threads", 1}};
}

std::vector<std::string> states(const json& job) {
  std::vector<std::string> out;
  for (const json& q : job["queue"]) out.push_back(q["state"]);
  return out;
}

}  // namespace

TEST(ServerEvaluations, QueueRunsEachPairAndSkipsWhatWasEvaluated) {
  TestServer s("evalqueue");
  make_adapter(s, "a", 1);
  make_adapter(s, "b", 2);
  Reply r = s.post("/api/perplexity/queue", queue_body({"", "a"}));
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["queue"].size(), 2u);
  EXPECT_EQ(r.body["queue"][1]["lora"], "a");
  json done = wait_for_state(s, is_done);
  EXPECT_EQ(done["state"], "finished") << done.dump();
  EXPECT_EQ(states(done), (std::vector<std::string>{"done", "done"}));
  EXPECT_GT(done["queue"][1]["perplexity"].get<double>(), 1.0);
  EXPECT_EQ(done["result"]["evaluated"], 2);
  EXPECT_EQ(done["result"]["skipped"], 0);
  json ev = s.get("/api/evaluations").body;
  ASSERT_EQ(ev["rows"].size(), 2u);
  EXPECT_EQ(ev["rows"][1]["row"], 1);
  EXPECT_EQ(ev["rows"][1]["lora"], "a");
  EXPECT_NEAR(ev["rows"][1]["perplexity"].get<double>(), done["queue"][1]["perplexity"].get<double>(), 1e-5);

  // Again with b: the two evaluated pairs are skipped, only b runs.
  r = s.post("/api/perplexity/queue", queue_body({"", "a", "b"}));
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["queue"].size(), 1u);
  EXPECT_EQ(r.body["skipped"].size(), 2u);
  EXPECT_EQ(r.body["skipped"][1]["lora"], "a");
  EXPECT_EQ(r.body["skipped"][1]["stride"], 16);
  done = wait_for_state(s, is_done);
  EXPECT_EQ(done["state"], "finished");
  EXPECT_THAT(done["messages"].back().get<std::string>(), "evaluated 1, skipped 2 (already in evaluations.csv)");
  EXPECT_EQ(s.get("/api/evaluations").body["rows"].size(), 3u);

  // Everything evaluated: nothing starts; another stride is another evaluation; redo forces it.
  r = s.post("/api/perplexity/queue", queue_body({"", "a", "b"}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["started"], false);
  EXPECT_EQ(r.body["skipped"].size(), 3u);
  json other = queue_body({"a"});
  other["stride"] = 8;
  r = s.post("/api/perplexity/queue", other);
  EXPECT_EQ(r.status, 202);
  wait_for_state(s, is_done);
  json redo = queue_body({"", "b"});
  redo["redo"] = true;
  r = s.post("/api/perplexity/queue", redo);
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body["queue"].size(), 2u);
  EXPECT_EQ(r.body["skipped"].size(), 0u);
  EXPECT_EQ(wait_for_state(s, is_done)["state"], "finished");
  EXPECT_EQ(s.get("/api/evaluations").body["rows"].size(), 6u);
}

TEST(ServerEvaluations, AFailedItemDoesNotStopTheQueue) {
  TestServer s("evalfail");
  make_adapter(s, "good", 1);
  fs::create_directories(s.dir() / "loras" / "broken");
  write_file_atomic(s.dir() / "loras" / "broken" / "adapter_config.json", "{\"r\": \"x\"}");
  Reply r = s.post("/api/perplexity/queue", queue_body({"broken", "good"}));
  ASSERT_EQ(r.status, 202) << r.body.dump();
  json done = wait_for_state(s, is_done);
  EXPECT_EQ(done["state"], "finished");
  EXPECT_EQ(states(done), (std::vector<std::string>{"failed", "done"}));
  EXPECT_FALSE(done["queue"][0]["error"].get<std::string>().empty());
  EXPECT_EQ(done["result"]["failed"], 1);
  ASSERT_EQ(s.get("/api/evaluations").body["rows"].size(), 1u);
  // Only the broken one: the job fails with its error.
  r = s.post("/api/perplexity/queue", queue_body({"broken"}));
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(wait_for_state(s, is_done)["state"], "failed");
}

TEST(ServerEvaluations, QueueRequestsAreChecked) {
  TestServer s("evalbad");
  Reply r = s.post("/api/perplexity/queue", queue_body(json::array()));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "loras");
  EXPECT_EQ(r.body["error"]["message"], "loras: choose at least one adapter (or the base model alone)");
  json b = queue_body({""});
  b["stride"] = 0;
  r = s.post("/api/perplexity/queue", b);
  EXPECT_EQ(r.body["error"]["field"], "stride");
  EXPECT_EQ(r.body["error"]["message"], "stride must be in [1, 32], got 0");
  b = queue_body({"missing"});
  r = s.post("/api/perplexity/queue", b);
  EXPECT_EQ(r.body["error"]["field"], "lora");
  json many = json::array();
  for (int i = 0; i < 65; ++i) many.push_back(cat("x", i));
  r = s.post("/api/perplexity/queue", queue_body(many));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["message"], "loras: at most 64 adapter (or the base model alone) in one queue, got 65");
  b = queue_body({""});
  b["redo"] = "yes";
  EXPECT_EQ(s.post("/api/perplexity/queue", b).body["error"]["field"], "redo");
  b = queue_body({""});
  b["lora"] = "";
  EXPECT_EQ(s.post("/api/perplexity/queue", b).body["error"]["message"],
            "unknown key 'lora' (expected models, loras, text_file, stride, max_length, threads, comment, redo)");
}

TEST(ServerEvaluations, CommentsAreSavedBackInPlace) {
  TestServer s("evalcomment");
  const fs::path csv = s.dir() / "loras" / "evaluations.csv";
  const std::string head = "model,lora,dataset,perplexity,stride,max_length,tokens,date,comment\n";
  const std::string row0 = "tiny,,short.txt,10.000000,16,32,75,2026-01-01 10:00:00,\"kept, \"\"as is\"\"\"\n";
  const std::string row1 = "tiny,a,short.txt,9.000000,16,32,75,2026-01-02 10:00:00,\n";
  write_file_atomic(csv, head + row0 + row1);
  const json ev = s.get("/api/evaluations").body;
  json body = ev["rows"][1];
  body.erase("perplexity");
  body.erase("stride");
  body.erase("max_length");
  body.erase("tokens");
  body["comment"] = "a, \"quoted\"\nsecond line";
  Reply r = s.post("/api/evaluations/comment", body);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["comment"], "a, \"quoted\"\nsecond line");
  EXPECT_EQ(read_file(csv), head + row0 +
                                "tiny,a,short.txt,9.000000,16,32,75,2026-01-02 10:00:00,\"a, \"\"quoted\"\"\nsecond line\"\n");
  EXPECT_EQ(s.get("/api/evaluations").body["rows"][1]["comment"], "a, \"quoted\"\nsecond line");

  json stale = body;
  stale["date"] = "2026-01-03 10:00:00";
  r = s.post("/api/evaluations/comment", stale);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["message"],
            "evaluations.csv changed since the page read it: row 1 is now the evaluation of 'tiny' at 2026-01-02 "
            "10:00:00 (hint: reload the results and edit the comment again)");
  stale = body;
  stale["row"] = 5;
  EXPECT_THAT(s.post("/api/evaluations/comment", stale).body["error"]["message"].get<std::string>(),
              HasSubstr("row 5 is gone (the file has 2 rows)"));
  json longer = body;
  longer["comment"] = std::string(kMaxCommentBytes + 1, 'x');
  r = s.post("/api/evaluations/comment", longer);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["message"], "comment is 2001 bytes, more than the 2000 a comment may have");
  json control = body;
  control["comment"] = std::string("bell\x07");
  EXPECT_EQ(s.post("/api/evaluations/comment", control).body["error"]["message"],
            "comment holds a control character (code 7); only tab and newlines are kept");
  json negative = body;
  negative["row"] = -1;
  EXPECT_EQ(s.post("/api/evaluations/comment", negative).body["error"]["field"], "row");
  EXPECT_EQ(read_file(csv), head + row0 +
                                "tiny,a,short.txt,9.000000,16,32,75,2026-01-02 10:00:00,\"a, \"\"quoted\"\"\nsecond line\"\n");
}
