// The HTTP server in-process on an ephemeral port, through httplib::Client: the UI files and
// schema, folder listings, 400s with the field, request guards and the token, and whole
// jobs: a training run steered over HTTP (one job at a time, save now, stop_at_loss changed
// mid-run, the stop button), its event stream with Last-Event-ID replay, the run in the
// past-runs list, a failing run, and a perplexity job that appends evaluations.csv.
#include <gtest/gtest.h>

#include <thread>

#include "common/test_util.h"
#include "server/listings.h"
#include "server/server_test_util.h"
#include "train/params.h"

using namespace tpro;
using namespace tpro::test;

TEST(Server, ServesTheUiAndTheSchema) {
  TestServer s("ui");
  auto page = s.client().Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<title>tpro: Training</title>"), std::string::npos);
  for (const char* f : {"/app.js", "/form.js", "/chart.js", "/api.js", "/style.css"}) {
    auto r = s.client().Get(f);
    ASSERT_TRUE(r) << f;
    EXPECT_EQ(r->status, 200) << f;
    EXPECT_GT(r->body.size(), 500u) << f;
  }
  Reply r = s.get("/missing.js");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body["error"]["type"], "not_found");
  r = s.get("/api/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body["error"]["message"], "no API route GET /api/nothing");
  r = s.get("/api/schema");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["fields"].size(), param_fields().size());
  EXPECT_EQ(r.body["groups"].size(), param_groups().size());
}

TEST(Server, ListsTheFolders) {
  TestServer s("lists");
  EXPECT_EQ(s.get("/api/models").body, json::parse(R"([{"name": "tiny"}, {"name": "tiny.gguf"}])"));
  const json data = s.get("/api/data").body;
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0]["path"], "sample.txt");
  EXPECT_EQ(data[0]["kind"], "text");
  EXPECT_EQ(s.get("/api/runs").body, json::array());
  EXPECT_EQ(s.get("/api/job").body["state"], "idle");
  EXPECT_EQ(s.get("/api/evaluations").body["rows"], json::array());
  const json info = s.get("/api/info").body;
  EXPECT_EQ(info["folders"]["loras"], fs::canonical(s.dir() / "loras").string());
  EXPECT_EQ(info["token_required"], false);
}

TEST(Server, BadRequestsAre400WithTheField) {
  TestServer s("bad");
  json b = endless_run("x");
  b["lora_rank"] = 0;
  Reply r = s.post("/api/train", b);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, json::parse(R"({"error": {"message": "lora_rank expects an integer in [1, 4096], got 0",
                                               "type": "invalid_request_error", "field": "lora_rank"}})"));
  b = endless_run("x");
  b["raw_text_file"] = "../models/tiny/config.json";
  r = s.post("/api/train", b);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "raw_text_file");
  auto raw = s.client().Post("/api/train", "{\"model\": ", "application/json");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 400);
  EXPECT_NE(raw->body.find("invalid JSON at byte"), std::string::npos);
  r = s.post("/api/control", {{"stop_at_loss", "low"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "stop_at_loss");
  r = s.post("/api/control", {{"stop_at_loss", 1}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["message"], "no training run is active to change its stops");
  EXPECT_EQ(s.post("/api/stop", json::object()).status, 409);
  EXPECT_EQ(s.post("/api/save", json::object()).status, 409);
  r = s.post("/api/check", {{"model", "tiny"}, {"raw_text_file", "sample.txt"}, {"cutoff_len", 64}});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body["report"].get<std::string>().find("Training blocks: "), std::string::npos);
  EXPECT_GT(r.body["blocks"].get<int>(), 10);
  r = s.post("/api/check", {{"model", "tiny"}, {"jsonl_dataset", "sample.txt"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "jsonl_dataset") << r.body.dump();
}

TEST(Server, GuardsAgainstOtherSites) {
  TestServer s("guards");
  auto r = s.client().Post("/api/stop", "{}", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415);
  Reply x = s.post("/api/stop", json::object(), {{"Origin", "http://evil.example"}});
  EXPECT_EQ(x.status, 403);
  EXPECT_EQ(x.body["error"]["message"], "cross-origin request from http://evil.example refused");
  x = s.get("/api/job", {{"Host", "evil.example:80"}});
  EXPECT_EQ(x.status, 403);
  x = s.post("/api/stop", json::object(), {{"Origin", "http://127.0.0.1:" + std::to_string(s.port())}});
  EXPECT_EQ(x.status, 409);  // same origin passes the guard
  EXPECT_EQ(s.get("/api/job", {{"Host", "localhost:1234"}}).status, 200);
}

TEST(Server, TokenWhenSet) {
  TestServer s("token", "s3cret");
  Reply r = s.get("/api/job");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body["error"]["type"], "unauthorized");
  EXPECT_EQ(s.get("/api/job", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(s.get("/api/job", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(s.get("/api/job", {{"Cookie", "a=b; tpro_token=s3cret"}}).status, 200);
  r = s.get("/?token=s3cret");
  EXPECT_EQ(r.status, 200);
  auto cookie = r.headers.find("Set-Cookie");
  ASSERT_NE(cookie, r.headers.end());
  EXPECT_EQ(cookie->second, "tpro_token=s3cret; Path=/; HttpOnly; SameSite=Strict");
  EXPECT_NE(s.server().url().find("?token=s3cret"), std::string::npos);
  ServeOptions o;
  o.host = "0.0.0.0";
  o.models = o.data = o.loras = s.dir();
  EXPECT_EQ(error_of([&] { Server open(o); }),
            "--host 0.0.0.0 is reachable from other machines: a token is required (hint: --token SECRET, or leave "
            "--host at 127.0.0.1)");
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("[::1]"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.2"));
  EXPECT_FALSE(is_loopback_host("localhost.evil.com"));
  EXPECT_EQ(random_token().size(), 32u);
  EXPECT_NE(random_token(), random_token());
}

TEST(Server, TrainingRunSteeredOverHttp) {
  TestServer s("train");
  Reply r = s.post("/api/train", endless_run("live"));
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["state"], "running");
  const int64_t job = r.body["id"];
  // One job at a time.
  r = s.post("/api/train", endless_run("other"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["type"], "conflict");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("a training run 'live' is already running"),
            std::string::npos);

  // A new stream starts at the job's first event; read a few steps, then disconnect.
  int steps = 0;
  auto first = read_events(s, [&](const SseEvent& e) { return e.type == "step" && ++steps == 5; });
  ASSERT_GE(first.size(), 6u);
  EXPECT_EQ(first[0].type, "state");
  EXPECT_EQ(first[0].data["id"], job);
  for (size_t i = 1; i < first.size(); ++i) EXPECT_EQ(first[i].id, first[i - 1].id + 1);
  const SseEvent& step5 = first.back();
  EXPECT_EQ(step5.data["step"], 5);
  EXPECT_EQ(step5.data["total_steps"], 1000000);
  EXPECT_GT(step5.data["it_per_s"].get<double>(), 0.0);

  // The run goes on without any client; reconnecting with Last-Event-ID replays exactly what followed.
  const int64_t mid = first[first.size() - 3].id;
  auto replay = read_events(s, [&](const SseEvent& e) { return e.id == step5.id + 3; }, -1, mid);
  ASSERT_GE(replay.size(), 2u);
  EXPECT_EQ(replay[0].id, mid + 1);
  EXPECT_EQ(replay[0].type, first[first.size() - 2].type);
  EXPECT_EQ(replay[0].data, first[first.size() - 2].data);
  EXPECT_EQ(replay[1].data, step5.data);

  // Save now: a checkpoint folder appears.
  const int64_t before_save = s.get("/api/job").body["last_event_id"];
  EXPECT_EQ(s.post("/api/save", json::object()).status, 200);
  auto saved = read_events(s, [](const SseEvent& e) { return e.type == "checkpoint"; }, before_save);
  const fs::path ck = saved.back().data["path"].get<std::string>();
  EXPECT_TRUE(fs::exists(ck / "adapter_model.safetensors")) << ck;
  EXPECT_EQ(ck.parent_path(), fs::canonical(s.dir() / "loras" / "live"));

  // stop_at_loss changed mid-run: the loss (about 7) is below 900, so the next step ends the run.
  const int64_t before_stop = s.get("/api/job").body["last_event_id"];
  r = s.post("/api/control", {{"stop_at_loss", 900}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["control"]["stop_at_loss"], 900.0);
  auto end = read_events(
      s, [](const SseEvent& e) { return e.type == "state" && e.data["state"] != "running"; }, before_stop);
  EXPECT_EQ(end.back().data["state"], "finished");
  const std::string reason = end.back().data["stop_reason"];
  EXPECT_NE(reason.find("reached stop_at_loss 900"), std::string::npos) << reason;
  bool control_event = false;
  for (const auto& e : end) control_event = control_event || (e.type == "control" && e.data["stop_at_loss"] == 900.0);
  EXPECT_TRUE(control_event);

  const json snap = s.get("/api/job").body;
  EXPECT_EQ(snap["state"], "finished");
  EXPECT_EQ(snap["records"].size(), snap["step"].get<size_t>());
  EXPECT_EQ(snap["checkpoints"].size(), 1u);
  EXPECT_EQ(snap["last_event_id"], end.back().id);
  const fs::path adapter = s.dir() / "loras" / "live";
  EXPECT_TRUE(fs::exists(adapter / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(adapter / "training_graph.json"));

  // The past-runs list, its chart and its parameters.
  const json runs = s.get("/api/runs").body;
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["name"], "live");
  EXPECT_EQ(runs[0]["steps"], snap["step"]);
  EXPECT_EQ(runs[0]["stop_reason"], reason);
  EXPECT_EQ(runs[0]["checkpoints"].size(), 1u);
  const json graph = s.get("/api/runs/live/graph").body;
  EXPECT_EQ(graph["records"].size(), snap["records"].size());
  EXPECT_EQ(graph["records"][0]["loss"], snap["records"][0]["loss"]);
  const json params = s.get("/api/runs/live/params").body;
  EXPECT_EQ(params["params"]["lora_rank"], 4);
  EXPECT_EQ(params["params"]["model"], "tiny");
  EXPECT_EQ(params["params"]["raw_text_file"], "sample.txt");
  EXPECT_EQ(s.get("/api/runs/nope/graph").status, 400);
  EXPECT_EQ(s.get("/api/runs/%2E%2E/params").body["error"]["field"], "name");
  EXPECT_NE(s.get("/api/runs/..%2Fmodels/params").status, 200);
}

TEST(Server, StopButtonSavesAndAFailingRunReportsWhy) {
  TestServer s("stop");
  ASSERT_EQ(s.post("/api/train", endless_run("halt")).status, 202);
  read_events(s, [](const SseEvent& e) { return e.type == "step"; });
  Reply r = s.post("/api/stop", json::object());
  EXPECT_EQ(r.status, 200);
  const json done = wait_for_state(s, is_done);
  EXPECT_EQ(done["state"], "stopped");
  EXPECT_EQ(done["stop_reason"], "stop requested");
  EXPECT_TRUE(fs::exists(s.dir() / "loras" / "halt" / "adapter_model.safetensors"));

  // A run that fails after it started (an empty text file has no training block).
  write_file_atomic(s.dir() / "data" / "empty.txt", "");
  json b = endless_run("broken");
  b["raw_text_file"] = "empty.txt";
  ASSERT_EQ(s.post("/api/train", b).status, 202);
  const json failed = wait_for_state(s, is_done);
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_FALSE(failed["error"].get<std::string>().empty());
}

TEST(Server, PerplexityJobAppendsTheResultsTable) {
  TestServer s("ppl");
  Reply r = s.post("/api/perplexity", {{"model", "tiny"}, {"text_file", "short.txt"}, {"stride", 16},
                                       {"max_length", 32}, {"comment", "base"}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(s.post("/api/train", endless_run("x")).status, 409);  // one job at a time, of any kind
  const json done = wait_for_state(s, is_done);
  ASSERT_EQ(done["state"], "finished") << done.dump();
  const double ppl = done["result"]["perplexity"];
  EXPECT_GT(ppl, 1.0);
  EXPECT_EQ(done["result"]["tokens"], 75);  // 74 bytes + BOS
  EXPECT_EQ(done["result"]["scored"], 74);
  EXPECT_EQ(done["progress"]["done"], done["progress"]["total"]);
  const json ev = s.get("/api/evaluations").body;
  ASSERT_EQ(ev["rows"].size(), 1u);
  EXPECT_EQ(ev["rows"][0]["model"], "tiny");
  EXPECT_EQ(ev["rows"][0]["dataset"], "short.txt");
  EXPECT_NEAR(ev["rows"][0]["perplexity"].get<double>(), ppl, 1e-6);  // the CSV keeps 6 decimals
  EXPECT_EQ(ev["rows"][0]["stride"], 16);
  EXPECT_EQ(ev["rows"][0]["max_length"], 32);
  EXPECT_EQ(ev["rows"][0]["tokens"], 75);
  EXPECT_EQ(ev["rows"][0]["lora"], "");
  EXPECT_EQ(ev["rows"][0]["comment"], "base");
  EXPECT_TRUE(fs::exists(s.dir() / "loras" / "evaluations.csv"));
  r = s.post("/api/perplexity", {{"model", "tiny"}, {"text_file", "short.txt"}, {"stride", 0}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "stride");
}

TEST(Server, StopEndsAPerplexityJob) {
  TestServer s("pplstop");
  // About a thousand windows of 256 tokens: long enough to be stopped after its first one.
  Reply r = s.post("/api/perplexity", {{"model", "tiny"}, {"text_file", "sample.txt"}, {"stride", 1},
                                       {"max_length", 256}, {"threads", 1}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  read_events(s, [](const SseEvent& e) { return e.type == "progress"; });
  EXPECT_EQ(s.post("/api/save", json::object()).status, 409);  // only training runs save
  EXPECT_EQ(s.post("/api/stop", json::object()).status, 200);
  const json done = wait_for_state(s, is_done);
  EXPECT_EQ(done["state"], "stopped");
  EXPECT_NE(done["progress"]["done"], done["progress"]["total"]);
  EXPECT_FALSE(fs::exists(s.dir() / "loras" / "evaluations.csv"));  // no row for an unfinished evaluation
}

// The chart's records carry the graph markers (the batch order's switch) for the web chart to
// draw; a record without any has no "markers" key.
TEST(Server, ChartRecordsCarryMarkers) {
  LogRecord r;
  r.step = 7;
  r.epoch = 1.25;
  r.loss = 1.4;
  EXPECT_FALSE(chart_record(r).contains("markers"));
  r.markers.push_back({"batch_order", "order: sequential", 1.0});
  const json j = chart_record(r);
  EXPECT_EQ(j["step"], 7);
  EXPECT_EQ(j["markers"], json::parse(R"([{"kind": "batch_order", "label": "order: sequential", "epoch": 1.0}])"));
}
