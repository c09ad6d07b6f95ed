// server/request: request bodies to job inputs. Output folder defaults and sandboxing,
// copy_params_from applied first and overridden by the body, the field named by every kind
// of mistake, stop changes checked like their parameters, and perplexity settings.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/fixture_folders.h"
#include "server/listings.h"
#include "server/request.h"
#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::test;

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

const std::string kSandboxHint = " (hint: tpro serve only reads and writes inside --models, --data and --loras)";

json minimal() { return {{"model", "tiny"}, {"lora_name", "a"}, {"raw_text_file", "sample.txt"}}; }

}  // namespace

TEST(Request, PathsResolveInsideTheFoldersAndOutputDefaultsToLoras) {
  Fixture f;
  const PathSandbox sb = f.sb();
  TrainParams p = train_params_from_request(minimal(), sb);
  EXPECT_EQ(p.model, fs::canonical(f.dir / "models" / "tiny").string());
  EXPECT_EQ(p.data.raw_text_file, fs::canonical(f.dir / "data" / "sample.txt").string());
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
  // A number too large for a double in the file: a 400 about copy_params_from, not a 500.
  fs::create_directories(f.dir / "loras" / "huge");
  write_file_atomic(f.dir / "loras" / "huge" / "training_parameters.json", R"({"learning_rate": 1e400})");
  b["copy_params_from"] = "huge";
  const auto [field, message] = api_error_of([&] { train_params_from_request(b, sb); });
  EXPECT_EQ(field, "copy_params_from");
  EXPECT_NE(message.find("training_parameters.json: invalid JSON ([json.exception.out_of_range.406] number overflow "
                         "parsing '1e400')"),
            std::string::npos)
      << message;
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

TEST(Request, RunFolderLinksMustStayInLoras) {
  Fixture f;
  const PathSandbox sb = f.sb();
  const fs::path loras = fs::canonical(f.dir / "loras");
  const fs::path outside = f.dir / "outside";
  fs::create_directories(outside);
  const std::string out = fs::canonical(outside).string();
  const std::string hint = "; hint: tpro serve only writes inside --loras)";
  // lora_name is a link to a folder outside: the run would write its files there.
  fs::create_symlink(outside, loras / "evil");
  json b = minimal();
  b["lora_name"] = "evil";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }),
            FieldMsg("lora_name", "lora_name: 'evil' is a symlink that leads outside the loras folder " +
                                      loras.string() + " (to " + out + hint));
  // A dangling link: a mkdir through it would create the folder outside.
  fs::create_symlink(outside / "new_run", loras / "dangling");
  b["lora_name"] = "dangling";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }),
            FieldMsg("lora_name", "lora_name: 'dangling' is a symlink that leads outside the loras folder " +
                                      loras.string() + " (to " + out + "/new_run" + hint));
  EXPECT_FALSE(fs::exists(outside / "new_run"));
  // A linked folder on the way (output_dir) is refused as output_dir.
  fs::create_symlink(outside, loras / "team");
  b["lora_name"] = "a";
  b["output_dir"] = "team";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }).first, "output_dir");
  // An existing adapter folder whose checkpoint is a link out: resuming would read it, saving write it.
  b.erase("output_dir");
  fs::create_directories(loras / "run");
  fs::create_symlink(outside, loras / "run" / "checkpoint-5");
  b["lora_name"] = "run";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }),
            FieldMsg("lora_name", "lora_name: 'run/checkpoint-5' is a symlink that leads outside the loras folder " +
                                      loras.string() + " (to " + out +
                                      ")" + kSandboxHint));
  // Links that stay inside are fine, and the check (which writes nothing) does not look.
  fs::create_directories(loras / "real");
  fs::create_symlink(loras / "real", loras / "alias");
  b["lora_name"] = "alias";
  EXPECT_EQ(train_params_from_request(b, sb).lora_name, "alias");
  b["lora_name"] = "evil";
  EXPECT_EQ(train_params_from_request(b, sb, true).lora_name, "evil");
}

TEST(Request, DataAndModelFolderLinksMustStayInTheirRoots) {
  Fixture f;
  const PathSandbox sb = f.sb();
  const fs::path data = fs::canonical(f.dir / "data"), models = fs::canonical(f.dir / "models");
  const fs::path outside = f.dir / "outside";
  fs::create_directories(outside);
  write_file_atomic(outside / "secret.txt", "A secret from outside the data folder.");
  const std::string secret = fs::canonical(outside / "secret.txt").string();
  // A raw-text folder with a .txt that links out of --data: the check's sample would show it.
  fs::create_directories(data / "texts");
  write_file_atomic(data / "texts" / "1.txt", "Inside.");
  fs::create_symlink(outside / "secret.txt", data / "texts" / "2.txt");
  json b = minimal();
  b["raw_text_file"] = "texts";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb, true); }),
            FieldMsg("raw_text_file", "raw_text_file: 'texts/2.txt' is a symlink that leads outside the data folder " +
                                          data.string() + " (to " + secret +
                                          ")" + kSandboxHint));
  // One that stays in --data but leaves the folder: the data layer's own rule.
  fs::remove(data / "texts" / "2.txt");
  fs::create_symlink(data / "sample.txt", data / "texts" / "2.txt");
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb, true); }),
            FieldMsg("raw_text_file", "raw_text_file: raw text folder " + (data / "texts").string() +
                                          ": 2.txt is a symlink to " + (data / "sample.txt").string() +
                                          ", outside the folder (hint: copy the file into the folder, or name it in "
                                          "raw_text_file itself)"));
  // The model folder: its tokenizer.json, and a shard named by the index.
  const fs::path tiny = models / "tiny";
  fs::rename(tiny / "tokenizer.json", outside / "tokenizer.json");
  fs::create_symlink(outside / "tokenizer.json", tiny / "tokenizer.json");
  EXPECT_EQ(api_error_of([&] { train_params_from_request(minimal(), sb); }),
            FieldMsg("model", "model: 'tiny/tokenizer.json' is a symlink that leads outside the models folder " +
                                  models.string() + " (to " + fs::canonical(outside / "tokenizer.json").string() +
                                  ")" + kSandboxHint));
  fs::remove(tiny / "tokenizer.json");
  fs::rename(outside / "tokenizer.json", tiny / "tokenizer.json");
  EXPECT_EQ(train_params_from_request(minimal(), sb).model, tiny.string());
  write_file_atomic(tiny / "model.safetensors.index.json",
                    R"({"weight_map": {"model.embed_tokens.weight": "../../outside/secret.safetensors"}})");
  EXPECT_EQ(api_error_of([&] { train_params_from_request(minimal(), sb); }),
            FieldMsg("model", "model: " + (tiny / "model.safetensors.index.json").string() +
                                  ": shard '../../outside/secret.safetensors' is outside the model folder " +
                                  tiny.string() + " (hint: an index names each shard by its file name inside the "
                                  "model folder)"));
}

TEST(Request, AdapterFoldersReadByTheServerStayInLoras) {
  Fixture f;
  const PathSandbox sb = f.sb();
  const fs::path loras = fs::canonical(f.dir / "loras");
  const fs::path outside = f.dir / "outside";
  fs::create_directories(outside / "adapter");
  write_file_atomic(outside / "adapter" / "adapter_config.json", "{}");
  write_file_atomic(outside / "training_parameters.json", R"({"lora_rank": 8})");
  // A whole adapter folder linked from outside (perplexity's lora, the past-run pages).
  fs::create_symlink(outside / "adapter", loras / "linked");
  EXPECT_EQ(api_error_of([&] {
              perplexity_job_from_request({{"model", "tiny"}, {"text_file", "short.txt"}, {"lora", "linked"}}, sb);
            }).second.rfind("lora: 'linked' is outside the loras folder " + loras.string(), 0),
            0u);
  // A real folder whose training_parameters.json links out ("copy parameters from").
  fs::create_directories(loras / "old");
  fs::create_symlink(outside / "training_parameters.json", loras / "old" / "training_parameters.json");
  json b = minimal();
  b["copy_params_from"] = "old";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }).second,
            "copy_params_from: 'old/training_parameters.json' is a symlink that leads outside the loras folder " +
                loras.string() + " (to " + fs::canonical(outside / "training_parameters.json").string() +
                ")" + kSandboxHint);
  EXPECT_EQ(api_error_of([&] { adapter_folder(sb, "old", "name"); }).first, "name");
}

// A GGUF base model is a file in --models: accepted when it is GGUF, refused when it is not
// or when a link takes it out of the folder.
TEST(Request, GgufBaseModelsInsideTheModelsFolder) {
  Fixture f;
  const PathSandbox sb = f.sb();
  const fs::path models = fs::canonical(f.dir / "models");
  json b = minimal();
  b["model"] = "tiny.gguf";
  EXPECT_EQ(train_params_from_request(b, sb).model, (models / "tiny.gguf").string());
  const PerplexityJob j =
      perplexity_job_from_request({{"model", "tiny.gguf"}, {"text_file", "short.txt"}, {"max_length", 0}}, sb);
  EXPECT_EQ(j.model_name, "tiny.gguf");
  EXPECT_EQ(j.max_length, 256);  // the GGUF's context length, from its metadata
  write_file_atomic(models / "notes.gguf", "not a model");
  b["model"] = "notes.gguf";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }),
            FieldMsg("model", "model: 'notes.gguf' is a file but not a GGUF model (it does not start with the GGUF "
                              "magic; hint: a .gguf file, or a Hugging Face folder with config.json)"));
  b["model"] = "tiny/config.json";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }).second.rfind(
                "model: 'tiny/config.json' is a file but not a GGUF model", 0),
            0u);
  const fs::path outside = f.dir / "outside";
  fs::create_directories(outside);
  fs::copy_file(models / "tiny.gguf", outside / "big.gguf");
  fs::create_symlink(outside / "big.gguf", models / "linked.gguf");
  b["model"] = "linked.gguf";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }),
            FieldMsg("model", "model: 'linked.gguf' is outside the models folder " + models.string() +
                                  " (a symlink on the way leads to " + fs::canonical(outside / "big.gguf").string() +
                                  ")" + kSandboxHint));
  EXPECT_EQ(list_models(sb), json::parse(R"([{"name": "notes.gguf"}, {"name": "tiny"}, {"name": "tiny.gguf"}])"));
}

// "Copy parameters from" a Training PRO run: its extensionless data names are found in --data
// as Training PRO finds them in its datasets folder, for the form and for a run.
TEST(Request, CopiedTrainingProDataNamesResolveInTheDataFolder) {
  Fixture f;
  const PathSandbox sb = f.sb();
  const fs::path data = fs::canonical(f.dir / "data");
  fs::create_directories(data / "formats");
  write_file_atomic(data / "qa.json", R"([{"q": "a?", "a": "b"}])");
  write_file_atomic(data / "formats" / "qa-format.json", R"({"q,a": "Q: %q%\nA: %a%"})");
  fs::create_directories(f.dir / "loras" / "tp");
  write_file_atomic(f.dir / "loras" / "tp" / "adapter_config.json", "{}");
  write_file_atomic(f.dir / "loras" / "tp" / "training_parameters.json",
                    R"({"raw_text_file": "sample", "dataset": "None", "format": "None", "lora_rank": 8})");
  json shown = run_params(sb, "tp");
  EXPECT_EQ(shown["params"]["raw_text_file"], "sample.txt");
  // Only what the file sets: no model (the form keeps its own), no defaults.
  EXPECT_EQ(shown["params"], json::parse(R"({"raw_text_file": "sample.txt", "dataset": "", "format": "",
                                             "lora_rank": 8})"));
  json b = {{"model", "tiny"}, {"lora_name", "a"}, {"copy_params_from", "tp"}};
  EXPECT_EQ(train_params_from_request(b, sb).data.raw_text_file, (data / "sample.txt").string());
  write_file_atomic(f.dir / "loras" / "tp" / "training_parameters.json",
                    R"({"raw_text_file": "None", "dataset": "qa", "eval_dataset": "qa", "format": "qa-format"})");
  shown = run_params(sb, "tp")["params"];
  EXPECT_EQ(shown["dataset"], "qa.json");
  EXPECT_EQ(shown["eval_dataset"], "qa.json");
  EXPECT_EQ(shown["format"], "formats/qa-format.json");
  EXPECT_EQ(shown["raw_text_file"], "");
  const TrainParams p = train_params_from_request(b, sb);
  EXPECT_EQ(p.data.dataset, (data / "qa.json").string());
  EXPECT_EQ(p.data.format, (data / "formats" / "qa-format.json").string());
}

TEST(Request, NumbersTooLargeForADoubleNameTheirField) {
  EXPECT_EQ(api_error_of([] { parse_json_body(R"({"lora_rank": 4, "learning_rate": 1e400})"); }),
            FieldMsg("learning_rate", "learning_rate: the number 1e400 is out of range (JSON numbers must fit a "
                                      "double, at most about 1.8e308 in size)"));
  EXPECT_EQ(api_error_of([] { parse_json_body(R"({"stop_at_loss": -2e999})"); }).first, "stop_at_loss");
  // Nested: the top-level key is the field, the inner one is named in the message.
  EXPECT_EQ(api_error_of([] { parse_json_body(R"({"target_modules": {"q": 1e400}})"); }),
            FieldMsg("target_modules", "q: the number 1e400 is out of range (JSON numbers must fit a double, at "
                                       "most about 1.8e308 in size)"));
  EXPECT_EQ(parse_json_body(R"({"learning_rate": 1e300})")["learning_rate"].get<double>(), 1e300);
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
  // A hint's advice names no field: this resume error is about no parameter of the form.
  EXPECT_EQ(field_in_message("batcher state was saved with rows = 9 but this run has 12 (hint: resume with the same "
                             "dataset and batch settings)"),
            "");
  EXPECT_EQ(field_in_message("model is required (hint: --model PATH (or model: in YAML), lora_name too)"), "model");
  EXPECT_EQ(field_in_message("x (hint: a (nested) dataset) then lora_rank"), "lora_rank");
}

// chat_template_file is a built-in template's name as given, or a file inside the data folder;
// a path outside it is refused naming the field.
TEST(Request, ChatTemplateFileIsABuiltinOrInsideTheDataFolder) {
  Fixture f;
  const PathSandbox sb = f.sb();
  json b = minimal();
  b["chat_template_file"] = "chatml";
  EXPECT_EQ(train_params_from_request(b, sb).data.chat_template_file, "chatml");
  write_file_atomic(f.dir / "data" / "t.jinja", "{{ messages[0]['content'] }}");
  b["chat_template_file"] = "t.jinja";
  EXPECT_EQ(train_params_from_request(b, sb).data.chat_template_file, fs::canonical(f.dir / "data" / "t.jinja").string());
  b["chat_template_file"] = "/etc/passwd";
  const auto [field, msg] = api_error_of([&] { train_params_from_request(b, sb); });
  EXPECT_EQ(field, "chat_template_file");
  b["chat_template_file"] = "../models/tiny/config.json";
  EXPECT_EQ(api_error_of([&] { train_params_from_request(b, sb); }).first, "chat_template_file");
}

// chat_template_kwargs from the web form's text box (JSON text) or an API client's object; a
// bad key is refused naming the field and the key.
TEST(Request, ChatTemplateKwargsTextOrObject) {
  Fixture f;
  const PathSandbox sb = f.sb();
  json b = minimal();
  b["chat_template_kwargs"] = R"({"enable_thinking": false})";
  EXPECT_EQ(train_params_from_request(b, sb).data.chat_template_kwargs, (json{{"enable_thinking", false}}));
  b["chat_template_kwargs"] = {{"enable_thinking", true}};
  EXPECT_EQ(train_params_from_request(b, sb).data.chat_template_kwargs, (json{{"enable_thinking", true}}));
  b["chat_template_kwargs"] = "";
  EXPECT_EQ(train_params_from_request(b, sb).data.chat_template_kwargs, json::object());
  b["chat_template_kwargs"] = {{"enable_thinking", {{"a", 1}}}};
  const auto [field, msg] = api_error_of([&] { train_params_from_request(b, sb); });
  EXPECT_EQ(field, "chat_template_kwargs");
  EXPECT_THAT(msg, ::testing::HasSubstr("'enable_thinking' must be a bool, number, string or null, got object"));
}
