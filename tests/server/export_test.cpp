// POST /api/export and GET /api/download: an adapter merged into its base as a Hugging Face
// folder and as a GGUF file (written into --models, where each is a base model that scores as
// the base with the adapter does), converted to a GGUF adapter, packed as a zip (read back
// entry by entry) and downloaded; an existing output is replaced only when confirmed; outputs
// never leave their folder or overwrite an input. Plus the chart's marks in /api/runs/<n>/graph.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "io/zip_stored.h"
#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

// A PEFT adapter "peft" in --loras whose B is not zero, so merging it changes the model.
LoraWeights write_adapter(const TestServer& s) {
  const LlamaConfig cfg = load_model_config(s.dir() / "models" / "tiny");
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets = parse_targets("all");
  Rng rng(11);
  LoraWeights lw = make_lora(cfg, lc, rng);
  for (auto& p : lw.params) p = float(rng.uniform(-0.3, 0.3));
  save_adapter(s.dir() / "loras" / "peft", lw, "tiny");
  return lw;
}

json export_done(const TestServer& s, const json& body) {
  const Reply r = s.post("/api/export", body);
  EXPECT_EQ(r.status, 202) << r.body.dump();
  const json done = wait_for_state(s, is_done);
  EXPECT_EQ(done["state"], "finished") << done.dump();
  return done;
}

double perplexity(const TestServer& s, const std::string& model, const std::string& lora) {
  json b = {{"model", model}, {"text_file", "short.txt"}, {"stride", 16}, {"max_length", 32}};
  if (!lora.empty()) b["lora"] = lora;
  EXPECT_EQ(s.post("/api/perplexity", b).status, 202);
  const json done = wait_for_state(s, is_done);
  return done["state"] == "finished" ? done["result"]["perplexity"].get<double>() : std::nan("");
}

}  // namespace

TEST(ServerExport, MergesIntoAFolderAndAGgufThatScoreAsBasePlusAdapter) {
  TestServer s("export_merge");
  write_adapter(s);
  json done = export_done(s, {{"kind", "merge"}, {"lora", "peft"}, {"model", "tiny"}});
  EXPECT_EQ(done["result"]["out"], "peft-merged");
  EXPECT_EQ(done["progress"]["done"], 4);
  EXPECT_EQ(done["progress"]["total"], 4);
  const fs::path merged = s.dir() / "models" / "peft-merged";
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"})
    EXPECT_TRUE(fs::exists(merged / f)) << f;
  EXPECT_THAT(done["messages"].dump(), HasSubstr("merging"));

  done = export_done(s, {{"kind", "merge_gguf"}, {"lora", "peft"}, {"model", "tiny"}, {"dtype", "f32"}});
  EXPECT_EQ(done["result"]["out"], "peft-merged.gguf");
  EXPECT_TRUE(is_gguf_file(s.dir() / "models" / "peft-merged.gguf"));
  EXPECT_THAT(s.get("/api/models").body.dump(), HasSubstr("\"peft-merged.gguf\""));

  const double with_lora = perplexity(s, "tiny", "peft"), base = perplexity(s, "tiny", "");
  EXPECT_NEAR(perplexity(s, "peft-merged", ""), with_lora, 1e-4 * with_lora);
  EXPECT_NEAR(perplexity(s, "peft-merged.gguf", ""), with_lora, 1e-4 * with_lora);
  EXPECT_GT(std::abs(with_lora - base), 1e-3 * base) << "the adapter changed nothing";
}

TEST(ServerExport, AnExistingOutputIsReplacedOnlyWhenConfirmed) {
  TestServer s("export_exists");
  write_adapter(s);
  const json body = {{"kind", "merge"}, {"lora", "peft"}, {"model", "tiny"}, {"out", "mine"}};
  export_done(s, body);
  write_file_atomic(s.dir() / "models" / "mine" / "stale.txt", "from before");
  Reply r = s.post("/api/export", body);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["type"], "exists");
  EXPECT_EQ(r.body["error"]["field"], "out");
  EXPECT_EQ(r.body["error"]["message"],
            "out: 'mine' already exists in the models folder (hint: confirm to replace it, or choose another name)");
  json again = body;
  again["overwrite"] = true;
  export_done(s, again);
  EXPECT_FALSE(fs::exists(s.dir() / "models" / "mine" / "stale.txt")) << "the folder is replaced whole";
  EXPECT_TRUE(fs::exists(s.dir() / "models" / "mine" / "config.json"));
  for (const auto& e : fs::directory_iterator(s.dir() / "models"))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << "temp left: " << e.path();
}

TEST(ServerExport, RefusesOutputsOutsideTheirFolderOrOverInputs) {
  TestServer s("export_refuse");
  write_adapter(s);
  auto refused = [&](json body, const std::string& field, const std::string& part) {
    const Reply r = s.post("/api/export", body);
    EXPECT_EQ(r.status, 400) << body.dump() << r.body.dump();
    EXPECT_EQ(r.body["error"]["field"], field) << body.dump();
    EXPECT_THAT(r.body["error"]["message"].get<std::string>(), HasSubstr(part)) << body.dump();
  };
  const json merge = {{"kind", "merge"}, {"lora", "peft"}, {"model", "tiny"}};
  auto with = [&](const json& more) {
    json b = merge;
    b.update(more);
    return b;
  };
  refused({{"kind", "copy"}, {"lora", "peft"}}, "kind", "kind must be merge, merge_gguf, adapter_gguf or zip, got 'copy'");
  refused(with({{"out", "../escaped"}}), "out", "out: '../escaped' is outside the models folder");
  refused(with({{"out", "tiny"}, {"overwrite", true}}), "out",
          "out: 'tiny' would overwrite an input of the export (tiny); choose another name");
  refused(with({{"dtype", "q4_0"}}), "dtype", "dtype 'q4_0' is not one the merge export writes");
  refused({{"kind", "zip"}, {"lora", "peft"}, {"out", "peft.tar"}}, "out", "out: 'peft.tar' must end in .zip");
  refused({{"kind", "zip"}, {"lora", "peft"}, {"out", "peft/inside.zip"}}, "out",
          "would overwrite an input of the export (peft)");
  refused({{"kind", "zip"}, {"lora", "missing"}}, "lora", "does not exist in the loras folder");
  refused({{"kind", "adapter_gguf"}, {"lora", "peft"}}, "model", "model is required");
  refused(with({{"overwrite", "yes"}}), "overwrite", "overwrite expects true or false, got \"yes\"");
  // A link as the output name, dangling out of --loras: the write would follow it.
  fs::create_symlink(s.dir() / "elsewhere.zip", s.dir() / "loras" / "out.zip");
  refused({{"kind", "zip"}, {"lora", "peft"}, {"out", "out.zip"}}, "out", "is outside the loras folder");
  EXPECT_FALSE(fs::exists(s.dir() / "elsewhere.zip"));
  EXPECT_EQ(s.get("/api/job").body["state"], "idle") << "nothing started";
}

TEST(ServerExport, ConvertsTheAdapterToGguf) {
  TestServer s("export_gguf");
  const LoraWeights lw = write_adapter(s);
  const json done = export_done(s, {{"kind", "adapter_gguf"}, {"lora", "peft"}, {"model", "tiny"}});
  EXPECT_EQ(done["result"]["out"], "peft.gguf");
  const LlamaConfig cfg = load_model_config(s.dir() / "models" / "tiny");
  const LoraWeights back = load_lora(s.dir() / "loras" / "peft.gguf", cfg);
  EXPECT_EQ(back.params, lw.params);
}

TEST(ServerExport, ZipsTheAdapterFolderAndDownloadsIt) {
  TestServer s("export_zip");
  write_adapter(s);
  const fs::path run = s.dir() / "loras" / "peft";
  fs::create_directories(run / "checkpoint-5-epoch0.10-loss1.0000");
  write_file_atomic(run / "checkpoint-5-epoch0.10-loss1.0000" / "trainer_state.json", "{\"step\": 5}");
  write_file_atomic(run / ".tpro-lock", "123");
  fs::create_symlink(run / "adapter_config.json", run / "link.json");
  json done = export_done(s, {{"kind", "zip"}, {"lora", "peft"}});
  EXPECT_EQ(done["result"]["out"], "peft.zip");
  EXPECT_EQ(done["progress"]["done"], done["progress"]["total"]);
  const std::string zip = read_file(s.dir() / "loras" / "peft.zip");
  const auto* d = reinterpret_cast<const uint8_t*>(zip.data());
  std::vector<std::string> names;
  for (const ZipEntry& e : read_zip_directory(d, zip.size(), "peft.zip")) {
    names.push_back(e.name);
    EXPECT_EQ(std::string(zip_entry_data(d, e, "peft.zip")), read_file(run / e.name)) << e.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}))
      << "no checkpoint unless asked, no link, no lock file";

  done = export_done(s, {{"kind", "zip"}, {"lora", "peft"}, {"out", "all.zip"}, {"include_checkpoints", true}});
  const std::string all = read_file(s.dir() / "loras" / "all.zip");
  EXPECT_EQ(read_zip_directory(reinterpret_cast<const uint8_t*>(all.data()), all.size(), "all.zip").size(), 3u);

  auto r = s.client().Get("/api/download?path=peft.zip");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, zip);
  EXPECT_EQ(r->get_header_value("Content-Disposition"), "attachment; filename=\"peft.zip\"");
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/zip");
  Reply bad = s.get("/api/download?path=peft/adapter_config.json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body["error"]["message"].get<std::string>(), HasSubstr("is not a .zip or .gguf file"));
  bad = s.get("/api/download?path=../models/tiny.gguf");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body["error"]["message"].get<std::string>(), HasSubstr("is outside the loras folder"));
}

TEST(ServerExport, ABusyServerRefusesAnExport) {
  TestServer s("export_busy");
  write_adapter(s);
  ASSERT_EQ(s.post("/api/train", endless_run("busy")).status, 202);
  const Reply r = s.post("/api/export", {{"kind", "zip"}, {"lora", "peft"}});
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(), HasSubstr("a training run 'busy' is already running"));
  s.post("/api/stop", json::object());
  wait_for_state(s, is_done);
}

TEST(ServerRunGraph, MarksCheckpointsAndLoggedEvents) {
  TestServer s("graph_marks");
  json run = endless_run("marked");
  run["max_steps"] = 4;
  run["save_steps"] = 2;
  ASSERT_EQ(s.post("/api/train", run).status, 202);
  ASSERT_EQ(wait_for_state(s, is_done)["state"], "finished");
  const fs::path log = s.dir() / "loras" / "marked" / "training_log.json";
  json info = json::parse(read_file(log));
  info["events"].push_back({{"step", 3}, {"kind", "batch_order"}, {"message", "batch order: sequential"}});
  write_file_atomic(log, info.dump());
  const json g = s.get("/api/runs/marked/graph").body;
  std::vector<int64_t> steps;
  for (const json& c : g["checkpoints"]) steps.push_back(c["step"].get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4}));
  bool found = false;
  for (const json& e : g["events"]) found = found || (e["kind"] == "batch_order" && e["step"] == 3);
  EXPECT_TRUE(found) << g["events"].dump();
}
