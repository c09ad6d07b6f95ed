// Deleting a run (POST /api/runs/<name>/delete): the folder goes at once and nothing outside
// --loras is touched (a symlinked run folder is unlinked, links inside are not followed); a
// run that a job trains or reads is refused with a 409; names that are not one plain run
// folder are refused; a half-deleted run left by a crash is never listed and is swept.
// And the YAML / command-line text of the form's values, and a YAML file read back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "server/api_error.h"
#include "server/request.h"
#include "server/runs.h"
#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::test;
using testing::HasSubstr;

namespace {

// {field, message} of the ApiError 400 f throws.
std::pair<std::string, std::string> api_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400) << e.what();
    return {e.field(), e.what()};
  }
  return {"", "(no error)"};
}

void make_run(const fs::path& dir) {
  fs::create_directories(dir / "checkpoint-2-epoch0.50-loss1.0000");
  write_file_atomic(dir / "adapter_config.json", "{}");
  write_file_atomic(dir / "checkpoint-2-epoch0.50-loss1.0000" / "state.bin", "x");
}

bool listed(const TestServer& s, const std::string& name) {
  for (const json& r : s.get("/api/runs").body)
    if (r["name"] == name) return true;
  return false;
}

std::vector<std::string> hidden_entries(const fs::path& loras) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(loras))
    if (e.path().filename().string()[0] == '.') out.push_back(e.path().filename().string());
  return out;
}

}  // namespace

TEST(ServerRuns, DeleteRemovesTheRunAndNothingOutside) {
  TestServer s("rundelete");
  const fs::path loras = s.dir() / "loras", outside = s.dir() / "outside";
  fs::create_directories(outside / "dir");
  write_file_atomic(outside / "dir" / "keep.txt", "keep");
  write_file_atomic(outside / "file.txt", "keep");
  make_run(loras / "old");
  fs::create_directory_symlink(outside / "dir", loras / "old" / "linked-dir");  // never followed
  fs::create_symlink(outside / "file.txt", loras / "old" / "linked-file");
  ASSERT_TRUE(listed(s, "old"));

  const Reply r = s.post("/api/runs/old/delete", json::object());
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body, json({{"deleted", "old"}, {"was", "folder"}}));
  EXPECT_FALSE(fs::exists(fs::symlink_status(loras / "old")));
  EXPECT_FALSE(listed(s, "old"));
  EXPECT_TRUE(hidden_entries(loras).empty());
  EXPECT_EQ(read_file(outside / "dir" / "keep.txt"), "keep");
  EXPECT_EQ(read_file(outside / "file.txt"), "keep");

  // A run folder that is a link (here to a run outside --loras): the link goes, its target stays.
  make_run(outside / "run");
  fs::create_directory_symlink(outside / "run", loras / "linked");
  const Reply l = s.post("/api/runs/linked/delete", json::object());
  ASSERT_EQ(l.status, 200) << l.body.dump();
  EXPECT_EQ(l.body["was"], "link");
  EXPECT_FALSE(fs::exists(fs::symlink_status(loras / "linked")));
  EXPECT_TRUE(fs::exists(outside / "run" / "adapter_config.json"));

  const Reply again = s.post("/api/runs/old/delete", json::object());
  EXPECT_EQ(again.status, 404);
  EXPECT_THAT(again.body["error"]["message"].get<std::string>(), HasSubstr("run 'old' does not exist in the loras folder"));
}

TEST(ServerRuns, DeleteRefusesWhatIsNotARunFolder) {
  TestServer s("rundeletebad");
  const fs::path loras = s.dir() / "loras";
  fs::create_directories(loras / "notes");
  write_file_atomic(loras / "notes" / "a.txt", "x");
  write_file_atomic(loras / "export.zip", "zip");
  PathSandbox sb(s.dir() / "models", s.dir() / "data", loras);
  EventBuffer events(16);
  JobManager jobs(events);
  EXPECT_EQ(api_error_of([&] { delete_run(sb, jobs, "notes"); }).second,
            "'notes' is not a run folder: it holds no adapter_config.json, training_graph.json or checkpoint-* folder "
            "(hint: only training runs are deleted here)");
  EXPECT_EQ(api_error_of([&] { delete_run(sb, jobs, "export.zip"); }).second,
            "'export.zip' is a file, not a run folder (hint: only training runs are deleted here)");
  for (const std::string bad : {"", ".", "..", "a\\b", ".tpro-trash-1"})
    EXPECT_EQ(api_error_of([&] { delete_run(sb, jobs, bad); }).second,
              cat("name must be the name of a run folder in the loras folder, got '", bad, "'"));
  EXPECT_TRUE(fs::exists(loras / "notes" / "a.txt"));
  EXPECT_TRUE(fs::exists(loras / "export.zip"));
  // Through HTTP a name with a slash, encoded or not, matches no route.
  EXPECT_EQ(s.post("/api/runs/..%2Fdata/delete", json::object()).status, 404);
  EXPECT_TRUE(fs::exists(s.dir() / "data" / "sample.txt"));
}

TEST(ServerRuns, HalfDeletedRunIsNotListedAndIsSwept) {
  TestServer s("runtrash");
  const fs::path loras = s.dir() / "loras";
  make_run(loras / ".tpro-trash-123-0");  // what a crash between rename and removal leaves
  make_run(loras / "kept");
  EXPECT_FALSE(listed(s, ".tpro-trash-123-0"));
  EXPECT_EQ(s.get("/api/runs/.tpro-trash-123-0/graph").status, 400);
  PathSandbox sb(s.dir() / "models", s.dir() / "data", loras);
  EXPECT_EQ(sweep_run_trash(sb), 1u);
  EXPECT_TRUE(hidden_entries(loras).empty());
  EXPECT_TRUE(listed(s, "kept"));
}

TEST(ServerRuns, DeleteRefusedWhileAJobUsesTheRun) {
  TestServer s("runbusy");
  const fs::path loras = s.dir() / "loras";
  // Training it.
  Reply r = s.post("/api/train", endless_run("busy"));
  ASSERT_EQ(r.status, 202) << r.body.dump();
  read_events(s, [](const SseEvent& e) { return e.type == "step"; });
  r = s.post("/api/runs/busy/delete", json::object());
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(),
              testing::MatchesRegex("run 'busy' is in use: job 1 \\(train, started .*\\) is training it \\(hint: stop "
                                    "that job or wait for it to end, then try again\\)"));
  EXPECT_TRUE(fs::exists(loras / "busy"));
  EXPECT_EQ(s.post("/api/stop", json::object()).status, 200);
  wait_for_state(s, is_done);

  // Evaluating it: a long perplexity job reading the adapter.
  const LlamaConfig cfg = load_model_config(s.dir() / "models" / "tiny");
  LoraConfig lc;
  lc.r = 2;
  lc.alpha = 4;
  lc.targets = parse_targets("q-v");
  Rng rng(3);
  save_adapter(loras / "peft", make_lora(cfg, lc, rng), "tiny");
  r = s.post("/api/perplexity", {{"model", "tiny"}, {"lora", "peft"}, {"text_file", "sample.txt"}, {"stride", 1},
                                 {"max_length", 256}, {"threads", 1}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  r = s.post("/api/runs/peft/delete", json::object());
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(), HasSubstr("is evaluating it"));
  EXPECT_EQ(s.post("/api/runs/busy/delete", json::object()).status, 200);  // another run is free
  EXPECT_EQ(s.post("/api/stop", json::object()).status, 200);
  wait_for_state(s, is_done);
  EXPECT_EQ(s.post("/api/runs/peft/delete", json::object()).status, 200);
  EXPECT_FALSE(fs::exists(loras / "peft"));
}

TEST(ServerConfig, FormValuesBecomeTheCliYamlAndCommand) {
  TestServer s("configyaml");
  const fs::path root = fs::canonical(s.dir());
  const Reply r = s.post("/api/config/yaml", {{"model", "tiny"}, {"lora_name", "my run"}, {"raw_text_file", "sample.txt"},
                                              {"lora_rank", 8}, {"use_rslora", true}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  const std::string yaml = r.body["yaml"];
  EXPECT_THAT(yaml, HasSubstr(cat("model: \"", (root / "models" / "tiny").string(), "\"\nlora_name: \"my run\"\n",
                                  "output_dir: \"", (root / "loras").string(), "\"\n")));
  EXPECT_THAT(yaml, HasSubstr(cat("raw_text_file: \"", (root / "data" / "sample.txt").string(), "\"\n")));
  EXPECT_EQ(r.body["command"], cat("tpro train --model=", (root / "models" / "tiny").string(),
                                   " '--lora-name=my run' --output-dir=", (root / "loras").string(),
                                   " --lora-rank=8 --use-rslora --raw-text-file=", (root / "data" / "sample.txt").string()));
  EXPECT_EQ(r.body["argv"][3], "--lora-name=my run");

  // Read back: the same values, paths relative to the served folders as the form shows them.
  const Reply back = s.post("/api/config/parse", {{"yaml", yaml}, {"name", "saved.yaml"}});
  ASSERT_EQ(back.status, 200) << back.body.dump();
  EXPECT_EQ(back.body["params"]["model"], "tiny");
  EXPECT_EQ(back.body["params"]["raw_text_file"], "sample.txt");
  EXPECT_EQ(back.body["params"]["output_dir"], "");
  EXPECT_EQ(back.body["params"]["lora_rank"], 8);
  EXPECT_EQ(back.body["params"]["lora_alpha"], 64);  // a default, not in the file
  EXPECT_EQ(back.body["keys"], json({"model", "lora_name", "output_dir", "lora_rank", "use_rslora", "raw_text_file"}));
  EXPECT_FALSE(back.body.contains("problem"));

  // Bad values in the form name their field; a path out of the served folders is refused.
  Reply bad = s.post("/api/config/yaml", {{"lora_rank", "many"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["field"], "lora_rank");
  bad = s.post("/api/config/yaml", {{"model", "../outside"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["field"], "model");
  EXPECT_THAT(bad.body["error"]["message"].get<std::string>(), HasSubstr("is outside the models folder"));
}

TEST(ServerConfig, BadYamlIsAClearErrorAtItsField) {
  TestServer s("configparse");
  Reply r = s.post("/api/config/parse", {{"yaml", "lora_rank: [8\n"}, {"name", "run.yaml"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(), testing::StartsWith("run.yaml:2:1: invalid YAML: "));
  r = s.post("/api/config/parse", {{"yaml", "model: tiny\nlora_rank: many\n"}, {"name", "run.yaml"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "lora_rank");
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(), testing::StartsWith("run.yaml:2:1: lora_rank expects "));
  r = s.post("/api/config/parse", {{"yaml", "lora_rnak: 8\n"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(),
              HasSubstr("config.yaml:1:1: unknown key 'lora_rnak' (did you mean 'lora_rank'?)"));
  r = s.post("/api/config/parse", {{"yaml", "- a\n- b\n"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(), HasSubstr("expected a mapping of parameter: value, got a list"));
  r = s.post("/api/config/parse", {{"yaml", std::string(kMaxConfigBytes + 1, '#')}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body["error"]["message"].get<std::string>(), HasSubstr("more than the 256 KiB a config may have"));
  // Loadable but not runnable: the values come back with the first problem Start would have.
  r = s.post("/api/config/parse", {{"yaml", "lora_name: x\nraw_text_file: missing.txt\n"}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["params"]["raw_text_file"], "missing.txt");
  EXPECT_EQ(r.body["problem"]["field"], "model");
  EXPECT_THAT(r.body["problem"]["message"].get<std::string>(), HasSubstr("model is required"));
}
