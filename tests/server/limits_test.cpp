// The server's limits and sandbox over HTTP: open event streams are capped (the excess gets a
// 503 at once, and /api/info still answers), one dataset check runs at a time (a second gets
// 429), a number too large for a double is a 400 naming its field, and symlinks that lead out
// of the served folders are refused (the check's sample, a run's folder, evaluations.csv) or
// left out of the listings.
#include <gtest/gtest.h>

#include <thread>

#include "server/limits.h"
#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::test;

TEST(Limits, SlotsAreCountedAndGivenBackByTheLastHolder) {
  Slots s(2);
  auto a = s.try_acquire();
  auto b = s.try_acquire();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(s.try_acquire());
  EXPECT_EQ(s.in_use(), 2);
  auto copy = a;  // a response that holds its slot in a copied closure
  a.reset();
  EXPECT_EQ(s.in_use(), 2);
  copy.reset();
  EXPECT_EQ(s.in_use(), 1);
  EXPECT_TRUE(s.try_acquire());  // the temporary gives its slot back at once
  EXPECT_EQ(s.in_use(), 1);
}

TEST(Limits, EventStreamsAreCapped) {
  TestServer s("streams");
  Slots& streams = s.server().limits().event_streams;
  ASSERT_EQ(streams.max(), kMaxEventStreams);
  // All but one slot held as if by open pages; then one real stream takes the last.
  std::vector<std::shared_ptr<void>> held;
  for (int i = 0; i + 1 < kMaxEventStreams; ++i) held.push_back(streams.try_acquire());
  std::thread page([&] { s.client().Get("/api/events", [](const char*, size_t) { return true; }); });
  for (int i = 0; i < 5000 && streams.in_use() < kMaxEventStreams; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(streams.in_use(), kMaxEventStreams);
  Reply r = s.get("/api/events");
  EXPECT_EQ(r.status, 503);
  const json stream_error = {{"message", "too many open event streams: tpro serve keeps at most 16 open at once "
                                        "(hint: close other pages or tabs showing this server)"},
                            {"type", "unavailable"}};
  EXPECT_EQ(r.body, json({{"error", stream_error}}));
  EXPECT_EQ(r.headers.find("Retry-After")->second, "5");
  EXPECT_EQ(s.get("/api/info").status, 200);  // the API still answers
  held.clear();
  // Shutting down ends the real stream, and its slot comes back with its response.
  s.server().shutdown();
  page.join();
  for (int i = 0; i < 5000 && streams.in_use() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(streams.in_use(), 0);
}

TEST(Limits, OneDatasetCheckAtATime) {
  TestServer s("checks");
  const json body = {{"model", "tiny"}, {"raw_text_file", "sample.txt"}, {"cutoff_len", 64}};
  auto running = s.server().limits().dataset_checks.try_acquire();  // a check in progress
  ASSERT_TRUE(running);
  Reply r = s.post("/api/check", body);
  EXPECT_EQ(r.status, 429);
  const json check_error = {{"message", "a dataset check is already running: one runs at a time (hint: wait for its "
                                       "report, then check again)"},
                           {"type", "too_many_requests"}};
  EXPECT_EQ(r.body, json({{"error", check_error}}));
  EXPECT_EQ(r.headers.find("Retry-After")->second, "2");
  running.reset();
  r = s.post("/api/check", body);
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(s.server().limits().dataset_checks.in_use(), 0);
}

TEST(Limits, HugeNumbersAre400WithTheirField) {
  TestServer s("numbers");
  auto res = s.client().Post("/api/train", R"({"model": "tiny", "learning_rate": 1e400})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  const json number_error = {{"message", "learning_rate: the number 1e400 is out of range (JSON numbers must fit a "
                                        "double, at most about 1.8e308 in size)"},
                            {"type", "invalid_request_error"},
                            {"field", "learning_rate"}};
  EXPECT_EQ(json::parse(res->body), json({{"error", number_error}}));
  res = s.client().Post("/api/control", R"({"stop_at_loss": -1e999})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["field"], "stop_at_loss");
}

TEST(Limits, LinksOutOfTheFoldersAreRefusedOverHttp) {
  TestServer s("links");
  const fs::path outside = s.dir() / "outside";
  fs::create_directories(outside);
  write_file_atomic(outside / "secret.txt", "The vault code is 4711.");
  // The reported read escape: a raw-text folder with a link out; /api/check's sample showed it.
  fs::create_directories(s.dir() / "data" / "texts");
  write_file_atomic(s.dir() / "data" / "texts" / "a.txt", "Inside the folder.");
  fs::create_symlink(outside / "secret.txt", s.dir() / "data" / "texts" / "b.txt");
  Reply r = s.post("/api/check", {{"model", "tiny"}, {"raw_text_file", "texts"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "raw_text_file");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find(
                "raw_text_file: 'texts/b.txt' is a symlink that leads outside the data folder"),
            std::string::npos)
      << r.body.dump();
  EXPECT_EQ(r.body.dump().find("4711"), std::string::npos);
  // The reported write escape: lora_name naming a link out of --loras. Nothing is written.
  fs::create_directories(outside / "target");
  fs::create_symlink(outside / "target", s.dir() / "loras" / "escape");
  r = s.post("/api/train", endless_run("escape"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "lora_name");
  EXPECT_EQ(r.body["error"]["message"].get<std::string>().rfind(
                "lora_name: 'escape' is a symlink that leads outside", 0),
            0u)
      << r.body.dump();
  EXPECT_EQ(s.get("/api/job").body["state"], "idle");
  EXPECT_TRUE(fs::is_empty(outside / "target"));
  // evaluations.csv linked out: neither read nor replaced.
  fs::create_symlink(outside / "secret.txt", s.dir() / "loras" / "evaluations.csv");
  r = s.get("/api/evaluations");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["message"].get<std::string>().rfind(
                "evaluations.csv: 'evaluations.csv' is a symlink that leads outside the loras folder", 0),
            0u)
      << r.body.dump();
  r = s.post("/api/perplexity", {{"model", "tiny"}, {"text_file", "short.txt"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "evaluations.csv");
  // Listings leave such links out.
  fs::create_symlink(outside, s.dir() / "data" / "linked_dir");
  const json data = s.get("/api/data").body;
  for (const auto& row : data) EXPECT_NE(row["path"], "linked_dir") << data.dump();
  for (const auto& row : data) EXPECT_NE(row["path"], "texts/b.txt") << data.dump();
  fs::create_directories(outside / "run");
  write_file_atomic(outside / "run" / "adapter_config.json", "{}");
  fs::create_symlink(outside / "run", s.dir() / "loras" / "linked_run");
  EXPECT_EQ(s.get("/api/runs").body, json::array());
}
