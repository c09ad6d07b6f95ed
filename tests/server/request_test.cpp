// server/request: request bodies to job inputs. Output folder defaults and sandboxing,
// copy_params_from applied first and overridden by the body, the field named by every kind
// of mistake, stop changes checked like their parameters, and perplexity settings.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/fixture_folders.h"
#include "server/request.h"
#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::testing;

using FieldMsg = std::pair<std::string, std::string>;

namespace {

struct Fixture {
  fs::path dir = fresh_dir("request");
  Fixture() { write_serve_fixture(dir); }
  ~Fixture() { fs::remove_all(dir); }
  PathSandbox sb() const { return PathSandbox(dir / "models", dir / "data", dir / "loras"); }
};

std::pair<std::string, std::string> api_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400) << e.what();
    return {e.field(), e.what()};
  }
  return {"", "(no error)"};
}

json minimal() { return {{"model", "tiny"}, {"lora_name", "a"}, {"raw_text_file", "sample.txt"}}; }

}  // namespace

TEST(Request, PathsResolveInsideTheFoldersAndOutputDefaultsToLoras) {
  Fixture f;
  const PathSandbox sb = f.sb();
  TrainParams p = train_params_from_request(minimal(), sb);
  EXPECT_EQ(p.model, fs::canonical(f.dir / "models" / "tiny").string());
  EXPECT_EQ(p.raw_text_file, fs::canonical(f.dir / "data" / "sample.txt").string());
  EXPECT_EQ(p.output_dir, fs::canonical(f.dir / "loras").string());
  json b = minimal();
  b["output_dir"] = "team/x";
  EXPECT_EQ(train_params_from_request(b, sb).output_dir, (fs::canonical(f.dir / "loras") / "team" / "x").string());
  b["output_dir"] = "";
  EXPECT_EQ(train_params_from_request(b, sb).output_dir, fs::canonical(f.dir / "loras").string());
}

TEST(Request, CopyParamsFromIsAppliedFirst) {
  Fixture f;
  const PathSandbox sb = f.sb();
  fs::create_directories(f.dir / "loras" / "old");
  // A Training PRO file: its spellings, its "None", an output folder from elsewhere.
  write_file_atomic(f.dir / "loras" / "old" / "training_parameters.json",
                    R"({"lora_rank": 8, "lora_alpha": 16, "lora_RS": true, "format": "None", "report_to": "None",
                        "learning_rate": "3e-4", "output_dir": "/somewhere/else", "lora_name": "old"})");
  json b = minimal();
  b["copy_params_from"] = "old";
  b["lora_alpha"] = 32;
  const TrainParams p = train_params_from_request(b, sb);
  EXPECT_EQ(p.lora_rank, 8);
  EXPECT_EQ(p.lora_alpha, 32);  // the body wins
  EXPECT_TRUE(p.use_rslora);
  EXPECT_EQ(p.lora_name, "a");
  EXPECT_EQ(p.output_dir, fs::canonical(f.dir / "loras").string());  // never the copied folder
  b["copy_params_from"] = "../models";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }).first, "copy_params_from");
  b["copy_params_from"] = "missing";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }).first, "copy_params_from");
}

TEST(Request, EveryMistakeNamesItsField) {
  Fixture f;
  const PathSandbox sb = f.sb();
  struct Case {
    json patch;
    std::string field, message_start;
  };
  const std::vector<Case> cases = {
      {{{"lora_rank", 0}}, "lora_rank", "lora_rank expects an integer in [1, 4096], got 0"},
      {{{"learning_rate", "fast"}}, "learning_rate", "learning_rate expects a number in (0, 10], got \"fast\""},
      {{{"lr_scheduler_type", "cosin"}}, "lr_scheduler_type", "lr_scheduler_type expects one of"},
      {{{"lora_rnak", 3}}, "lora_rnak", "unknown key 'lora_rnak' (did you mean 'lora_rank'?)"},
      {{{"model", ""}}, "model", "model is required: choose a base model in the models folder"},
      {{{"model", "../data"}}, "model", "model: '../data' is outside the models folder"},
      {{{"model", "."}}, "model", "model: '.' is not a model folder (no config.json in it"},
      {{{"raw_text_file", "/etc/hostname"}}, "raw_text_file", "raw_text_file: '/etc/hostname' is outside the data"},
      {{{"raw_text_file", "nope.txt"}}, "raw_text_file", "raw_text_file: 'nope.txt' does not exist in the data folder"},
      {{{"raw_text_file", ""}}, "raw_text_file", "no training data: set raw_text_file"},
      {{{"lora_name", "a/b"}}, "lora_name", "lora_name must be a plain folder name, got 'a/b'"},
      {{{"lora_name", ""}}, "lora_name", "lora_name is required"},
      {{{"output_dir", "../x"}}, "output_dir", "output_dir: '../x' is outside the loras folder"},
      {{{"resume_from_checkpoint", "/tmp"}}, "resume_from_checkpoint", "resume_from_checkpoint: '/tmp' is outside"},
      {{{"epochs", 0}, {"max_steps", 0}}, "epochs", "epochs and max_steps are both 0: nothing to train"},
      {{{"lr_scheduler_type", "polynomial"}, {"lr_end", 1}}, "lr_end", "lr_end (1) must be smaller than learning_rate"},
  };
  for (const Case& c : cases) {
    json b = minimal();
    b.update(c.patch);
    const auto [field, message] = api_error_of([&] { train_params_from_request(b, sb); });
    EXPECT_EQ(field, c.field) << c.patch.dump() << ": " << message;
    EXPECT_EQ(message.rfind(c.message_start, 0), 0u) << c.patch.dump() << ": " << message;
  }
  EXPECT_EQ(api_error_of([&] { train_params_from_request(json::array(), sb); }),
            FieldMsg("", "expected a JSON object of training parameters, got array"));
  // The dataset check does not need a lora_name.
  json b = minimal();
  b.erase("lora_name");
  EXPECT_EQ(train_params_from_request(b, sb, true).lora_name, "");
}

TEST(Request, StopChanges) {
  StopChange c = stop_change_from_request({{"stop_at_loss", "1.5"}});
  EXPECT_EQ(c.stop_at_loss, 1.5);
  EXPECT_FALSE(c.stop_at_epoch);
  c = stop_change_from_request({{"stop_at_epoch", 2}, {"stop_at_loss", 0}});
  EXPECT_EQ(c.stop_at_epoch, 2);
  EXPECT_EQ(c.stop_at_loss, 0.0);
  EXPECT_EQ(api_error_of([] { stop_change_from_request({{"stop_at_loss", -1}}); }),
            FieldMsg("stop_at_loss", "stop_at_loss expects a number in [0, 1000], got -1"));
  EXPECT_EQ(api_error_of([] { stop_change_from_request({{"stop_at_epoch", 1.5}}); }).first, "stop_at_epoch");
  EXPECT_EQ(api_error_of([] { stop_change_from_request({{"stop", true}}); }),
            FieldMsg("stop", "unknown key 'stop' (expected stop_at_loss, stop_at_epoch)"));
  EXPECT_EQ(api_error_of([] { stop_change_from_request(json::object()); }).second,
            "expected stop_at_loss and/or stop_at_epoch");
}

TEST(Request, PerplexitySettings) {
  Fixture f;
  const PathSandbox sb = f.sb();
  PerplexityJob j = perplexity_job_from_request({{"model", "tiny"}, {"text_file", "short.txt"}, {"stride", "32"}}, sb);
  EXPECT_EQ(j.model_name, "tiny");
  EXPECT_EQ(j.dataset_name, "short.txt");
  EXPECT_EQ(j.stride, 32);
  EXPECT_EQ(j.max_length, 256);  // 0 = the model's context (256 here; at most 2048)
  EXPECT_TRUE(j.lora.empty());
  j = perplexity_job_from_request({{"model", "tiny"}, {"text_file", "short.txt"}}, sb);
  EXPECT_EQ(j.stride, 256);  // min(512, the model's 256 positions)
  EXPECT_EQ(perplexity_job_from_request({{"model", "tiny"}, {"text_file", "short.txt"}, {"stride", 16.0}}, sb).stride, 16);
  struct Case {
    json body;
    std::string field, message;
  };
  const std::vector<Case> cases = {
      {{{"text_file", "short.txt"}}, "model", "model is required: choose a base model in the models folder"},
      {{{"model", "tiny"}}, "text_file", "text_file is required: a text file in the data folder"},
      {{{"model", "tiny"}, {"text_file", "short.txt"}, {"max_length", 257}}, "max_length",
       "max_length must be in [0, 256], got 257"},
      {{{"model", "tiny"}, {"text_file", "short.txt"}, {"max_length", 64}, {"stride", 65}}, "stride",
       "stride must be in [1, 64], got 65"},
      {{{"model", "tiny"}, {"text_file", "short.txt"}, {"stride", "x"}}, "stride", "stride expects an integer, got \"x\""},
      {{{"model", "tiny"}, {"text_file", "short.txt"}, {"max_length", 1e30}}, "max_length",
       "max_length expects an integer, got 1e+30"},
      {{{"model", "tiny"}, {"text_file", "short.txt"}, {"stride", 2.5}}, "stride", "stride expects an integer, got 2.5"},
      {{{"model", "tiny"}, {"text_file", "short.txt"}, {"lora", "../x"}}, "lora",
       "lora must be the name of an adapter folder in the loras folder, got '../x'"},
      {{{"model", "tiny"}, {"text_file", "."}}, "text_file", "text_file: '.' is a folder, expected a file"},
      {{{"model", "tiny"}, {"text_file", "short.txt"}, {"strid", 1}}, "strid",
       "unknown key 'strid' (expected model, lora, text_file, stride, max_length, threads, comment)"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(api_error_of([&] { perplexity_job_from_request(c.body, sb); }),
              FieldMsg(c.field, c.message))
        << c.body.dump();
}

TEST(Request, FieldInMessage) {
  EXPECT_EQ(field_in_message("lora_name is required"), "lora_name");
  EXPECT_EQ(field_in_message("no training data: set raw_text_file, dataset (with format) or jsonl_dataset"),
            "raw_text_file");
  EXPECT_EQ(field_in_message("jsonl_eval_dataset is set but jsonl_dataset is not"), "jsonl_eval_dataset");
  EXPECT_EQ(field_in_message("something else entirely"), "");
}

// chat_template_file is a built-in template's name as given, or a file inside the data folder;
// a path outside it is refused naming the field.
TEST(Request, ChatTemplateFileIsABuiltinOrInsideTheDataFolder) {
  Fixture f;
  const PathSandbox sb = f.sb();
  json b = minimal();
  b["chat_template_file"] = "chatml";
  EXPECT_EQ(train_params_from_request(b, sb).chat_template_file, "chatml");
  write_file_atomic(f.dir / "data" / "t.jinja", "{{ messages[0]['content'] }}");
  b["chat_template_file"] = "t.jinja";
  EXPECT_EQ(train_params_from_request(b, sb).chat_template_file, fs::canonical(f.dir / "data" / "t.jinja").string());
  b["chat_template_file"] = "/etc/passwd";
  const auto [field, msg] = api_error_of([&] { train_params_from_request(b, sb); });
  EXPECT_EQ(field, "chat_template_file");
  b["chat_template_file"] = "../models/tiny/config.json";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }).first, "chat_template_file");
}
