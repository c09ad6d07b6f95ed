// train/params: JSON round trip, YAML with line numbers, validation messages, unknown-key
// hints, the schema, Training PRO's training_parameters.json, and the CLI binder's precedence
// (defaults < copy_params_from < YAML < flags).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "model/lora.h"
#include "train/params.h"
#include "train/params_cli.h"
#include "train/trainer.h"
#include "common/test_util.h"

using namespace tpro;
using tpro::test::error_of;
using json = nlohmann::json;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("tpro_params_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TrainParams runnable() {
  TrainParams p;
  p.model = "models/tiny";
  p.lora_name = "my-lora";
  p.data.raw_text_file = "data/book.txt";
  return p;
}

// Parses "tpro train <args>" the way cli/ wires subcommands.
TrainParams parse_cli(std::vector<std::string> args, bool validate_after = true) {
  CLI::App app{"test"};
  app.require_subcommand(1);
  TrainParams out;
  bind_cli(app.add_subcommand("train", "train a LoRA"), &out, validate_after);
  std::vector<const char*> argv = {"tpro", "train"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(int(argv.size()), argv.data());
  return out;
}

}  // namespace

TEST(Params, JsonRoundTripKeepsEveryField) {
  TrainParams p = runnable();
  p.lora_rank = 8;
  p.lora_dropout = 0.1;
  p.use_rslora = true;
  p.target_modules = {"q_proj", "o_proj"};
  p.learning_rate = 1.5e-4;
  p.lr_scheduler_type = "FP_low_epoch_annealing";
  p.data.hard_cut_string = "\\n\\n";
  p.data.add_eos_token_type = EosPlacement::kHardCutOnly;
  p.stop_at_loss = 1.25;
  TrainParams q;
  apply_json(json::parse(to_json(p).dump()), q);
  EXPECT_EQ(p, q);
  EXPECT_EQ(to_json(p).size(), param_fields().size());
}

TEST(Params, TrainingProKeysAndTypes) {
  json j = to_json(TrainParams{});
  for (const char* key : {"lora_name", "always_override", "save_steps", "micro_batch_size", "batch_size", "epochs",
                          "learning_rate", "lr_scheduler_type", "lora_rank", "lora_alpha", "lora_dropout",
                          "cutoff_len", "dataset", "eval_dataset", "format", "eval_steps", "raw_text_file",
                          "warmup_steps", "optimizer", "hard_cut_string", "train_only_after", "stop_at_loss",
                          "add_eos_token", "min_chars", "precize_slicing_overlap", "add_eos_token_type",
                          "save_steps_under_loss", "add_bos_token", "training_projection", "sliding_window",
                          "warmup_ratio", "grad_accumulation", "neft_noise_alpha", "group_by_length",
                          "eliminate_long_blocks", "stop_at_epoch", "train_on_inputs", "hybrid_training",
                          "hybrid_data_ratio", "hybrid_text_ratio", "resume_from_checkpoint"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["lora_rank"], 32);
  EXPECT_EQ(j["training_projection"], "q-v");
  EXPECT_EQ(j["hard_cut_string"], "\\n\\n\\n");
  EXPECT_TRUE(j["precize_slicing_overlap"].is_boolean());
}

TEST(Params, JsonAcceptsNumericStringsAndRejectsBadValues) {
  TrainParams p;
  apply_json(json{{"learning_rate", "3e-4"}, {"epochs", 2}, {"warmup_steps", 50.0}, {"lora_alpha", "16"}}, p);
  EXPECT_DOUBLE_EQ(p.learning_rate, 3e-4);
  EXPECT_DOUBLE_EQ(p.epochs, 2);
  EXPECT_EQ(p.warmup_steps, 50);
  EXPECT_EQ(p.lora_alpha, 16);
  EXPECT_ERROR_HAS(apply_json(json{{"lora_rank", "abc"}}, p), "JSON: lora_rank expects an integer in [1, 4096], got \"abc\"");
  EXPECT_ERROR_HAS(apply_json(json{{"lora_rank", 0}}, p), "lora_rank expects an integer in [1, 4096], got 0");
  EXPECT_ERROR_HAS(apply_json(json{{"lora_rank", 8.5}}, p), "got 8.5");
  EXPECT_ERROR_HAS(apply_json(json{{"lora_dropout", 1.0}}, p), "lora_dropout expects a number in [0, 1), got 1.0");
  EXPECT_ERROR_HAS(apply_json(json{{"learning_rate", 0}}, p), "learning_rate expects a number in (0, 10], got 0");
  EXPECT_ERROR_HAS(apply_json(json{{"add_bos_token", "maybe"}}, p), "add_bos_token expects true or false, got \"maybe\"");
  EXPECT_ERROR_HAS(apply_json(json{{"model", 3}}, p), "model expects a string, got 3");
  EXPECT_ERROR_HAS(apply_json(json{{"lr_scheduler_type", "cosin"}}, p), "(did you mean 'cosine'?)");
  EXPECT_ERROR_HAS(apply_json(json{{"lr_scheduler_type", "cosin"}}, p), "one of linear, constant");
  EXPECT_ERROR_HAS(apply_json(json{{"target_modules", {"q_proj", "x_proj"}}}, p),
                   "'x_proj' is not one (did you mean '");
  EXPECT_ERROR_HAS(apply_json(json::array(), p), "expected a JSON object of training parameters, got array");
}

TEST(Params, UnknownKeysSuggestTheField) {
  TrainParams p;
  EXPECT_ERROR_HAS(apply_json(json{{"lora_rnak", 8}}, p), "unknown key 'lora_rnak' (did you mean 'lora_rank'?)");
  EXPECT_ERROR_HAS(apply_json(json{{"lora_RS", true}}, p), "(did you mean 'use_rslora'? 'lora_RS' is Training PRO's name");
  std::string far = error_of([&] { apply_json(json{{"zzzzzzzz", 1}}, p); });
  EXPECT_NE(far.find("unknown key 'zzzzzzzz'"), std::string::npos);
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
}

TEST(Params, YamlFileWithLineNumbers) {
  auto dir = temp_dir("yaml");
  write_file_atomic(dir / "run.yaml",
                    "model: models/tiny\nlora_name: test\nlora_rank: 16\nadd_bos_token: no\n"
                    "target_modules: [q_proj, v_proj]\nlearning_rate: 2e-4\ntrain_only_after:\n"
                    "raw_text_file: data/a.txt\n");
  TrainParams p;
  load_yaml_file(dir / "run.yaml", p);
  EXPECT_EQ(p.lora_rank, 16);
  EXPECT_FALSE(p.data.add_bos_token);
  EXPECT_EQ(p.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_DOUBLE_EQ(p.learning_rate, 2e-4);
  EXPECT_EQ(p.data.train_only_after, "");
  EXPECT_NO_THROW(validate(p));

  write_file_atomic(dir / "bad.yaml", "lora_rank: 8\nlora_alpha: 16\nlora_rnak: 4\n");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "bad.yaml", p), "bad.yaml:3:1: unknown key 'lora_rnak' (did you mean 'lora_rank'?)");
  write_file_atomic(dir / "range.yaml", "epochs: 2\n  \nmicro_batch_size: -1\n");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "range.yaml", p), "range.yaml:3:1: micro_batch_size expects an integer in [1, 4096], got \"-1\"");
  write_file_atomic(dir / "syntax.yaml", "lora_rank: [1, 2\n");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "syntax.yaml", p), "syntax.yaml:2:1: invalid YAML");
  write_file_atomic(dir / "list.yaml", "- lora_rank\n");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "list.yaml", p), "expected a mapping of parameter: value, got a list");
  write_file_atomic(dir / "nested.yaml", "lora:\n  rank: 8\n");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "nested.yaml", p), "nested.yaml:1:1: unknown key 'lora'");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "missing.yaml", p), "cannot read");
  fs::remove_all(dir);
}

TEST(Params, ValidateNamesKeyExpectationAndValue) {
  EXPECT_NO_THROW(validate(runnable()));
  TrainParams p = runnable();
  p.lora_rank = 0;
  EXPECT_ERROR_HAS(validate(p), "lora_rank expects an integer in [1, 4096], got 0");
  p = runnable();
  p.lr_scheduler_type = "warp";
  EXPECT_ERROR_HAS(validate(p), "lr_scheduler_type expects one of linear");
  p = runnable();
  p.model.clear();
  EXPECT_ERROR_HAS(validate(p), "model is required");
  p = runnable();
  p.lora_name = "../escape";
  EXPECT_ERROR_HAS(validate(p), "lora_name must be a plain folder name, got '../escape'");
  p = runnable();
  p.data.raw_text_file.clear();
  EXPECT_ERROR_HAS(validate(p), "no training data");
  p = runnable();
  p.data.dataset = "alpaca.json";
  p.data.format = "alpaca-format.json";
  EXPECT_ERROR_HAS(validate(p), "raw_text_file and dataset are both set (hint: set hybrid_training");
  p.data.hybrid_training = true;
  EXPECT_NO_THROW(validate(p));
  p.data.format.clear();
  EXPECT_ERROR_HAS(validate(p), "dataset 'alpaca.json' needs format");
  p = runnable();
  p.lr_scheduler_type = "FP_3epoch_raise_hold_fall";
  p.epochs = 2;
  EXPECT_ERROR_HAS(validate(p), "FP_3epoch_raise_hold_fall needs epochs >= 3 (rise, hold, fall), got 2");
  p = runnable();
  p.lr_scheduler_type = "polynomial";
  p.lr_end = 1e-3;
  EXPECT_ERROR_HAS(validate(p), "lr_end (0.001) must be smaller than learning_rate (0.0003)");
  p = runnable();
  p.epochs = 0;
  EXPECT_ERROR_HAS(validate(p), "epochs and max_steps are both 0");
  p.max_steps = 100;
  EXPECT_NO_THROW(validate(p));
  p.lr_scheduler_type = "FP_low_epoch_annealing";
  EXPECT_ERROR_HAS(validate(p), "needs epochs > 0");
  p = runnable();
  p.batch_size = 2;
  EXPECT_ERROR_HAS(validate(p), "batch_size (legacy) must be 0 or >= micro_batch_size (4), got 2");
  p = runnable();
  p.data.length_schedule.to_sequential = LengthSwitch::kEpoch;
  EXPECT_ERROR_HAS(validate(p), "needs group_by_length = true");
  p = runnable();
  p.data.group_by_length = true;
  p.data.length_schedule = {LengthSwitch::kLoss, 1.5};
  p.data.length_schedule.loss_min = 1.6;
  EXPECT_ERROR_HAS(validate(p), "the loss range [length_to_sequential_loss_min, length_to_sequential_at] = [1.6, 1.5] "
                                "is empty (hint: the low end must be <= length_to_sequential_at)");
  p.data.length_schedule.loss_min = 1.5;
  EXPECT_NO_THROW(validate(p));
  p.data.length_schedule = {LengthSwitch::kStep, 40};
  p.data.length_schedule.loss_min = 1.2;
  EXPECT_ERROR_HAS(validate(p), "length_to_sequential_loss_min = 1.2 needs length_to_sequential = 'loss', got 'step'");
}

// The loss range's low end is one more key in every layer: flags, YAML, JSON, and back.
TEST(ParamsCli, LengthToSequentialLossRange) {
  auto dir = temp_dir("cli_loss_range");
  std::string cfg = (dir / "run.yaml").string();
  write_file_atomic(cfg, "model: m\nlora_name: a\nraw_text_file: t.txt\ngroup_by_length: true\n"
                         "length_to_sequential: loss\nlength_to_sequential_at: 1.5\nlength_to_sequential_loss_min: 1.2\n");
  TrainParams p = parse_cli({"--config", cfg});
  EXPECT_DOUBLE_EQ(p.data.length_schedule.switch_loss(), 1.5);
  EXPECT_DOUBLE_EQ(p.data.length_schedule.switch_loss_min(), 1.2);
  p = parse_cli({"--config", cfg, "--length-to-sequential-loss-min", "1.3"});
  EXPECT_DOUBLE_EQ(p.data.length_schedule.loss_min, 1.3);
  EXPECT_EQ(to_json(p)["length_to_sequential_loss_min"], 1.3);
  EXPECT_ERROR_HAS(parse_cli({"--config", cfg, "--length-to-sequential-loss-min", "2"}),
                   "[length_to_sequential_loss_min, length_to_sequential_at] = [2, 1.5] is empty");
  EXPECT_ERROR_HAS(apply_json(json{{"length_to_sequential_loss_min", -1}}, p), "length_to_sequential_loss_min");
  fs::remove_all(dir);
}

TEST(Params, SchemaListsEveryField) {
  json s = schema_json();
  std::set<std::string> groups, names, flags;
  for (const auto& g : s["groups"]) groups.insert(g["id"].get<std::string>());
  ASSERT_EQ(s["fields"].size(), param_fields().size());
  for (const auto& f : s["fields"]) {
    std::string name = f["name"];
    names.insert(name);
    flags.insert(f["cli"].get<std::string>());
    EXPECT_TRUE(groups.count(f["group"].get<std::string>())) << name;
    EXPECT_FALSE(f["help"].get<std::string>().empty()) << name;
    EXPECT_TRUE(f.contains("default")) << name;
    const Field* fld = find_field(name);
    ASSERT_NE(fld, nullptr) << name;
    EXPECT_EQ(f["default"], fld->default_value()) << name;
    if (f["type"] == "choice") {
      ASSERT_TRUE(f.contains("choices")) << name;
      EXPECT_NE(std::find(f["choices"].begin(), f["choices"].end(), f["default"]), f["choices"].end()) << name;
    }
  }
  json defaults = to_json(TrainParams{});
  EXPECT_EQ(names.size(), defaults.size());
  for (const auto& [k, v] : defaults.items()) EXPECT_TRUE(names.count(k)) << k;
  EXPECT_EQ(flags.size(), names.size());  // every field has its own flag
  EXPECT_TRUE(flags.count("--lora-rank"));
  // Every declared default passes its own field's checks.
  for (const auto& f : param_fields()) EXPECT_NO_THROW(parse_field_value(f, f.default_value(), "default")) << f.name;
}

// Every key the newest Training PRO (FartyPants/Training_PRO script.py, PARAMETERS) writes to
// training_parameters.json, with the values its UI defaults give: each is copied into a tpro
// parameter or deliberately ignored with a note saying why.
json training_pro_parameters() {
  return {{"lora_name", "tp-lora"}, {"always_override", false}, {"save_steps", 0.0}, {"micro_batch_size", 4},
          {"batch_size", 0}, {"epochs", 3}, {"learning_rate", "3e-4"}, {"lr_scheduler_type", "linear"},
          {"lora_rank", 32}, {"lora_alpha", 64}, {"lora_dropout", 0.05}, {"cutoff_len", 256},
          {"dataset", "None"}, {"eval_dataset", "None"}, {"format", "None"}, {"eval_steps", 100.0},
          {"raw_text_file", "novel"}, {"higher_rank_limit", false}, {"warmup_steps", 100.0},
          {"optimizer", "adamw_torch"}, {"hard_cut_string", "\\n\\n\\n"}, {"train_only_after", ""},
          {"stop_at_loss", 0}, {"add_eos_token", false}, {"min_chars", 0.0}, {"report_to", "None"},
          {"precize_slicing_overlap", true}, {"add_eos_token_type", "Every Block"}, {"save_steps_under_loss", 1.8},
          {"add_bos_token", true}, {"training_projection", "q-v"}, {"sliding_window", false}, {"warmup_ratio", 0},
          {"grad_accumulation", 1}, {"neft_noise_alpha", 0}, {"group_by_length", false},
          {"eliminate_long_blocks", false}, {"stop_at_epoch", 0}, {"datasetJSONL", "None"},
          {"eval_datasetJSONL", "None"}, {"eval_stepsJSONL", 250.0}, {"hybrid_training", false},
          {"hybrid_data_ratio", 100}, {"hybrid_text_ratio", 100}, {"lora_RS", true}, {"lora_RS_alpha", 16},
          {"lora_modulessave", false}, {"use_grad_checkpoint", false}};
}

TEST(Params, EveryTrainingProKeyIsCopiedOrIgnoredWithANote) {
  const auto dir = temp_dir("every_key");
  const json tp = training_pro_parameters();
  ASSERT_EQ(tp.size(), 48u);
  write_file_atomic(dir / "training_parameters.json", tp.dump(2));
  TrainParams p;
  const std::vector<std::string> ignored = copy_params_from(dir, p);
  const std::set<std::string> ign(ignored.begin(), ignored.end());
  EXPECT_EQ(ign, (std::set<std::string>{"always_override", "eval_stepsJSONL", "higher_rank_limit", "lora_name"}));
  for (const auto& [key, value] : tp.items()) {
    if (ign.count(key)) {
      EXPECT_NE(copy_params_note(key), "not a tpro parameter") << key;
      std::printf("ignored %-22s %s\n", key.c_str(), copy_params_note(key).c_str());
    } else {
      EXPECT_TRUE(find_field(key) || key == "lora_RS" || key == "lora_RS_alpha" || key == "datasetJSONL" ||
                  key == "eval_datasetJSONL")
          << key << " is neither a tpro parameter nor a mapped Training PRO key";
    }
  }
  // rsLoRA: Training PRO trains with alpha = lora_RS_alpha and scale lora_RS_alpha / sqrt(r).
  EXPECT_TRUE(p.use_rslora);
  EXPECT_EQ(p.lora_alpha, 16);
  EXPECT_EQ(p.lora_rank, 32);
  EXPECT_EQ(p.eval_steps, 100);  // eval_stepsJSONL applies only to a JSONL run
  EXPECT_FALSE(p.lora_modulessave);  // copied: Training PRO's "Train Head"
  EXPECT_EQ(copy_params_note("overlap_len"), "not a tpro parameter");
  fs::remove_all(dir);
}

TEST(Params, TrainingProPairsFollowTheKeyTheyDependOn) {
  const auto dir = temp_dir("pairs");
  json tp = training_pro_parameters();
  // rsLoRA off: lora_alpha is the alpha, lora_RS_alpha is ignored.
  tp["lora_RS"] = false;
  write_file_atomic(dir / "training_parameters.json", tp.dump());
  TrainParams p;
  std::vector<std::string> ignored = copy_params_from(dir, p);
  EXPECT_FALSE(p.use_rslora);
  EXPECT_EQ(p.lora_alpha, 64);
  EXPECT_TRUE(std::count(ignored.begin(), ignored.end(), "lora_RS_alpha"));
  EXPECT_EQ(copy_params_note("lora_RS_alpha"), "the alpha of an rsLoRA run, used only when lora_RS is on");
  // rsLoRA on with an alpha below 1: Training PRO clamps it to 1.
  tp["lora_RS"] = true;
  tp["lora_RS_alpha"] = 0;
  write_file_atomic(dir / "training_parameters.json", tp.dump());
  copy_params_from(dir, p);
  EXPECT_TRUE(p.use_rslora);
  EXPECT_EQ(p.lora_alpha, 1);
  // A JSONL run: eval_stepsJSONL is its eval_steps, datasetJSONL its jsonl_dataset.
  tp["datasetJSONL"] = "chat";
  tp["raw_text_file"] = "None";
  write_file_atomic(dir / "training_parameters.json", tp.dump());
  ignored = copy_params_from(dir, p);
  EXPECT_EQ(p.eval_steps, 250);
  EXPECT_EQ(p.data.jsonl_dataset, "chat");
  EXPECT_FALSE(std::count(ignored.begin(), ignored.end(), "eval_stepsJSONL"));
  // A bad value under a mapped key names the key as Training PRO wrote it.
  tp["lora_RS_alpha"] = "lots";
  write_file_atomic(dir / "training_parameters.json", tp.dump());
  EXPECT_ERROR_HAS(copy_params_from(dir, p), "training_parameters.json: key 'lora_RS_alpha' (as lora_alpha): lora_alpha "
                                             "expects");
  fs::remove_all(dir);
}

TEST(Params, CopyParamsFromTrainingProFolder) {
  auto dir = temp_dir("copy");
  json tp = {{"lora_name", "old-lora"},     {"always_override", true},       {"save_steps", 0.0},
             {"micro_batch_size", 4},       {"batch_size", 0},               {"epochs", 2},
             {"learning_rate", "3e-4"},     {"lr_scheduler_type", "FP_low_epoch_annealing"},
             {"lora_rank", 128},            {"lora_alpha", 256},             {"lora_dropout", 0.05},
             {"cutoff_len", 512},           {"dataset", "None"},             {"eval_dataset", "None"},
             {"format", "None"},            {"eval_steps", 100.0},           {"raw_text_file", "novel"},
             {"higher_rank_limit", false},  {"warmup_steps", 100.0},         {"optimizer", "adamw_torch"},
             {"hard_cut_string", "\\n\\n\\n"}, {"train_only_after", ""},     {"stop_at_loss", 0},
             {"add_eos_token", false},      {"min_chars", 0.0},              {"report_to", "None"},
             {"precize_slicing_overlap", true}, {"add_eos_token_type", "Every Block"},
             {"save_steps_under_loss", 1.8}, {"add_bos_token", true},        {"training_projection", "q-k-v-o"},
             {"sliding_window", false},     {"warmup_ratio", 0},             {"grad_accumulation", 2},
             {"neft_noise_alpha", 5},       {"lora_RS", true},               {"datasetJSONL", "None"}};
  write_file_atomic(dir / "training_parameters.json", tp.dump(2));
  TrainParams p;
  p.lora_name = "new-lora";
  p.data.dataset = "stale.json";
  auto ignored = copy_params_from(dir, p);
  EXPECT_EQ(p.lora_name, "new-lora");
  EXPECT_FALSE(p.always_override);
  EXPECT_EQ(p.lora_rank, 128);
  EXPECT_DOUBLE_EQ(p.learning_rate, 3e-4);
  EXPECT_EQ(p.lr_scheduler_type, "FP_low_epoch_annealing");
  EXPECT_EQ(p.data.dataset, "");  // "None" is Training PRO's empty choice
  EXPECT_EQ(p.data.raw_text_file, "novel");
  EXPECT_EQ(p.training_projection, "q-k-v-o");
  EXPECT_EQ(p.grad_accumulation, 2);
  EXPECT_TRUE(p.use_rslora);
  EXPECT_DOUBLE_EQ(p.neft_noise_alpha, 5);
  std::set<std::string> ign(ignored.begin(), ignored.end());
  EXPECT_EQ(ign, (std::set<std::string>{"always_override", "higher_rank_limit", "lora_name"}));
  EXPECT_EQ(p.report_to, "None");

  tp["optimizer"] = "adamw_apex_fused";  // a transformers name Training PRO does not offer
  write_file_atomic(dir / "training_parameters.json", tp.dump());
  EXPECT_ERROR_HAS(copy_params_from(dir, p), "training_parameters.json: key 'optimizer': optimizer expects one of adamw_torch");
  write_file_atomic(dir / "training_parameters.json", "{\"lora_rank\": ");
  EXPECT_ERROR_HAS(copy_params_from(dir, p), "training_parameters.json: invalid JSON at byte");
  // Our own output reads back unchanged.
  TrainParams mine = runnable();
  mine.lora_rank = 12;
  write_file_atomic(dir / "training_parameters.json", to_json(mine).dump(2));
  TrainParams back = runnable();
  copy_params_from(dir / "training_parameters.json", back);
  EXPECT_EQ(back, mine);
  fs::remove_all(dir);
}

// Every optimizer Training PRO offers copies over and runs as what its name says; the form's
// dropdown lists them (the schema's choices).
TEST(Params, EveryTrainingProOptimizerIsAccepted) {
  const std::vector<std::pair<std::string, OptimKind>> names = {
      {"adamw_hf", OptimKind::adamw},         {"adamw_torch", OptimKind::adamw},
      {"adamw_torch_fused", OptimKind::adamw}, {"adafactor", OptimKind::adafactor},
      {"adamw_bnb_8bit", OptimKind::adamw8bit}, {"adamw_8bit", OptimKind::adamw8bit},
      {"paged_adamw_8bit", OptimKind::adamw8bit}, {"sgd", OptimKind::sgd},
      {"adagrad", OptimKind::adagrad},        {"lion_32bit", OptimKind::lion},
      {"lion_8bit", OptimKind::lion}};
  const fs::path dir = temp_dir("optimizers");
  std::vector<std::string> choices;
  const json schema = schema_json();
  for (const auto& f : schema["fields"])
    if (f["name"] == "optimizer") choices = f["choices"].get<std::vector<std::string>>();
  for (const auto& [name, kind] : names) {
    SCOPED_TRACE(name);
    write_file_atomic(dir / "training_parameters.json", json({{"optimizer", name}}).dump());
    TrainParams p = runnable();
    copy_params_from(dir, p);
    EXPECT_EQ(p.optimizer, name);
    EXPECT_NO_THROW(validate(p));
    EXPECT_EQ(optimizer_kind(name), kind);
    EXPECT_NE(std::find(choices.begin(), choices.end(), name), choices.end());
  }
  EXPECT_EQ(choices.size(), names.size());
  EXPECT_EQ(optimizer_note("adamw_8bit"), "");
  EXPECT_THAT(optimizer_note("paged_adamw_8bit"), ::testing::HasSubstr("runs as adamw_8bit"));
  EXPECT_THAT(optimizer_note("lion_8bit"), ::testing::HasSubstr("runs as lion_32bit"));
  EXPECT_ERROR_HAS(optimizer_kind("adamw_apex_fused"), "unknown optimizer 'adamw_apex_fused' (hint: one of adamw_torch");
  TrainParams p = runnable();
  p.optimizer = "sgd";
  p.sgd_nesterov = true;
  EXPECT_ERROR_HAS(validate(p), "sgd_nesterov needs sgd_momentum > 0, got 0");
  p.sgd_momentum = 0.9;
  EXPECT_NO_THROW(validate(p));
  fs::remove_all(dir);
}

// Training PRO's data values are names without extensions, found in its datasets folder.
TEST(Params, CopyParamsFromResolvesTrainingProDataNames) {
  const fs::path dir = temp_dir("copy_names"), data = dir / "data";
  fs::create_directories(data / "formats");
  fs::create_directories(data / "chapters");
  for (const char* f : {"long.txt", "qa.json", "qa-eval.json", "chat.jsonl", "formats/alpaca.json", "plain.json"})
    write_file_atomic(data / f, "x");
  const auto copied = [&](const json& tp, const fs::path& root) {
    write_file_atomic(dir / "training_parameters.json", tp.dump());
    TrainParams p;
    copy_params_from(dir, p, root);
    return p.data;
  };
  DataOptions d = copied({{"raw_text_file", "long"}, {"dataset", "qa"}, {"eval_dataset", "qa-eval"},
                          {"format", "alpaca"}, {"datasetJSONL", "chat"}, {"eval_datasetJSONL", "None"}},
                         data);
  EXPECT_EQ(d.raw_text_file, "long.txt");
  EXPECT_EQ(d.dataset, "qa.json");
  EXPECT_EQ(d.eval_dataset, "qa-eval.json");
  EXPECT_EQ(d.format, "formats/alpaca.json");  // Training PRO's formats folder
  EXPECT_EQ(d.jsonl_dataset, "chat.jsonl");
  EXPECT_EQ(d.jsonl_eval_dataset, "");
  // A folder of that name comes first, as in Training PRO; a format may sit beside the data;
  // a name that is already a path is kept; so is one that matches nothing (its error comes later).
  d = copied({{"raw_text_file", "chapters"}, {"format", "plain"}, {"dataset", "qa.json"}, {"eval_dataset", "gone"}},
             data);
  EXPECT_EQ(d.raw_text_file, "chapters");
  EXPECT_EQ(d.format, "plain.json");
  EXPECT_EQ(d.dataset, "qa.json");
  EXPECT_EQ(d.eval_dataset, "gone");
  // Never a probe outside the root: "../data/long" would exist as ../data/long.txt.
  d = copied({{"raw_text_file", "../data/long"}}, data / "chapters");
  EXPECT_EQ(d.raw_text_file, "../data/long");
  // Without a root the current folder is searched (the CLI).
  const fs::path cwd = fs::current_path();
  fs::current_path(data);
  d = copied({{"raw_text_file", "long"}}, {});
  fs::current_path(cwd);
  EXPECT_EQ(d.raw_text_file, "long.txt");
  fs::remove_all(dir);
}

TEST(Params, DerivedValues) {
  TrainParams p;
  EXPECT_EQ(resolved_target_modules(p), (std::vector<std::string>{"q_proj", "v_proj"}));
  p.training_projection = "all";
  EXPECT_EQ(resolved_target_modules(p).size(), 7u);
  p.training_projection = "k-v-down";
  EXPECT_EQ(resolved_target_modules(p), (std::vector<std::string>{"k_proj", "v_proj", "down_proj"}));
  p.target_modules = {"o_proj"};
  EXPECT_EQ(resolved_target_modules(p), (std::vector<std::string>{"o_proj"}));
  p.grad_accumulation = 3;
  EXPECT_EQ(effective_grad_accumulation(p), 3);
  EXPECT_EQ(optimizer_warmup_steps(p), 34);  // ceil(100 / 3)
  p.batch_size = 16;                         // legacy: 16 / 4
  EXPECT_EQ(effective_grad_accumulation(p), 4);
  EXPECT_EQ(optimizer_warmup_steps(p), 25);
  p.lora_name = "x";
  p.output_dir = "/tmp/loras";
  EXPECT_EQ(adapter_dir(p), fs::path("/tmp/loras/x"));
  p.lr_scheduler_type = "FP_half_time_annealing";
  SchedulerSpec s = make_scheduler_spec(p, 200);
  EXPECT_EQ(s.type, SchedulerType::FpHalfTimeAnnealing);
  EXPECT_EQ(s.warmup_steps, 25);
  EXPECT_EQ(s.total_steps, 200);
  EXPECT_EQ(resolved_steps_per_epoch(s), 67);  // ceil(200 / 3 epochs)
}

TEST(ParamsCli, YamlThenFlagsOverride) {
  auto dir = temp_dir("cli");
  std::string cfg = (dir / "run.yaml").string();
  write_file_atomic(cfg, "model: m\nlora_name: a\nraw_text_file: t.txt\nlora_rank: 8\nlora_alpha: 16\nadd_bos_token: true\n");
  TrainParams p = parse_cli({"--config", cfg, "--lora-rank", "32", "--no-add-bos-token", "--target-modules",
                             "q_proj,k_proj", "--learning-rate=1e-4"});
  EXPECT_EQ(p.lora_rank, 32);    // flag beats YAML
  EXPECT_EQ(p.lora_alpha, 16);   // YAML beats default
  EXPECT_FALSE(p.data.add_bos_token);
  EXPECT_EQ(p.target_modules, (std::vector<std::string>{"q_proj", "k_proj"}));
  EXPECT_DOUBLE_EQ(p.learning_rate, 1e-4);
  EXPECT_EQ(p.epochs, 3);        // default untouched
  TrainParams q = parse_cli({"-c", cfg, "--add-bos-token=false", "--use-rslora"});
  EXPECT_FALSE(q.data.add_bos_token);
  EXPECT_TRUE(q.use_rslora);
  EXPECT_ERROR_HAS(parse_cli({"--config", cfg, "--lora-rank", "abc"}), "--lora-rank: lora_rank expects an integer");
  EXPECT_ERROR_HAS(parse_cli({"--config", cfg, "--lr-scheduler-type", "cosin"}), "did you mean 'cosine'?");
  EXPECT_ERROR_HAS(parse_cli({"--lora-rank", "8"}), "model is required");
  EXPECT_EQ(parse_cli({"--lora-rank", "8"}, false).lora_rank, 8);
  EXPECT_THROW(parse_cli({"--lora-rnak", "8"}), CLI::ExtrasError);  // CLI11's own error, not "model is required"
  EXPECT_THROW(parse_cli({"--help"}), CLI::CallForHelp);
  fs::remove_all(dir);
}

// quantize_embedding / quantize_head: flags and YAML, their choices, and the refusal with Train Head.
TEST(ParamsCli, VocabQuantizationKeys) {
  auto dir = temp_dir("cli_vocab");
  std::string cfg = (dir / "run.yaml").string();
  write_file_atomic(cfg, "model: m\nlora_name: a\nraw_text_file: t.txt\nquantize_embedding: q4_k\n");
  TrainParams p = parse_cli({"--config", cfg, "--quantize-head", "q6_k"});
  EXPECT_EQ(p.quantize_embedding, "q4_k");
  EXPECT_EQ(p.quantize_head, "q6_k");
  EXPECT_EQ(TrainParams{}.quantize_head, "none") << "off by default";
  EXPECT_ERROR_HAS(parse_cli({"--config", cfg, "--quantize-head", "nf4"}),
                   "quantize_head expects one of none, q8_0, q6_k, q4_k, q4_0");
  EXPECT_ERROR_HAS(parse_cli({"--config", cfg, "--lora-modulessave"}),
                   "quantize_embedding / quantize_head cannot be combined with lora_modulessave (Train Head)");
  fs::remove_all(dir);
}

TEST(ParamsCli, CopyParamsFromIsTheLowestLayer) {
  auto dir = temp_dir("cli_copy");
  fs::create_directories(dir / "old");
  write_file_atomic(dir / "old" / "training_parameters.json",
                    json{{"lora_rank", 16}, {"lora_alpha", 8}, {"epochs", 5}, {"lora_name", "old"}}.dump());
  std::string cfg = (dir / "run.yaml").string();
  write_file_atomic(cfg, "model: m\nlora_name: new\nraw_text_file: t.txt\nlora_alpha: 32\ncopy_params_from: " +
                             (dir / "old").string() + "\n");
  TrainParams p = parse_cli({"--config", cfg, "--epochs", "4"});
  EXPECT_EQ(p.lora_rank, 16);   // from the copied folder
  EXPECT_EQ(p.lora_alpha, 32);  // YAML over the copy
  EXPECT_EQ(p.epochs, 4);       // flag over both
  EXPECT_EQ(p.lora_name, "new");
  TrainParams q = parse_cli({"--model", "m", "--lora-name", "n", "--raw-text-file", "t", "--copy-params-from",
                             (dir / "old").string()});
  EXPECT_EQ(q.lora_rank, 16);
  EXPECT_EQ(q.epochs, 5);
  fs::remove_all(dir);
}

TEST(ParamsCli, HelpShowsFlagsDefaultsAndGroups) {
  CLI::App app{"test"};
  TrainParams out;
  bind_cli(&app, &out);
  std::string help = app.help();
  EXPECT_NE(help.find("--lora-rank"), std::string::npos);
  EXPECT_NE(help.find("--no-add-bos-token"), std::string::npos);
  EXPECT_NE(help.find("FP_3epoch_raise_hold_fall"), std::string::npos);
  EXPECT_NE(help.find("Stops and checkpoints"), std::string::npos);
  EXPECT_NE(help.find("=32"), std::string::npos) << help.substr(0, 2000);  // lora_rank's default
  // Each flag's help starts with the plain label the web form shows.
  EXPECT_THAT(help, ::testing::HasSubstr("True batch size. Text blocks trained together in one pass"));
  EXPECT_THAT(help, ::testing::HasSubstr("Add overlapping blocks. Also train on blocks that overlap"));
}

// The words of the form (params_words.cpp): every field has a plain label, Training PRO's where
// it has the control; essential fields come first in the form; a slider's range lies inside the
// field's bounds, its steps land on its ends, and it holds the default.
TEST(Params, EveryFieldHasPlainWordsAndSaneSliders) {
  std::set<std::string> named;
  for (const auto& w : field_words()) {
    EXPECT_NE(find_field(w.name), nullptr) << "words for an unknown field " << w.name;
    EXPECT_TRUE(named.insert(w.name).second) << "two entries for " << w.name;
  }
  const json schema = schema_json();
  int essential = 0, sliders = 0;
  for (const auto& f : schema["fields"]) {
    const std::string name = f["name"];
    SCOPED_TRACE(name);
    EXPECT_TRUE(named.count(name)) << "no words for " << name;
    const std::string label = f["label"];
    EXPECT_FALSE(label.empty());
    EXPECT_NE(label, name);
    EXPECT_EQ(label.find('_'), std::string::npos);  // words, not an identifier
    essential += f["essential"].get<bool>();
    if (!f.contains("slider")) continue;
    ++sliders;
    ASSERT_TRUE(f["type"] == "int" || f["type"] == "float");
    const double lo = f["slider"]["min"], hi = f["slider"]["max"], step = f["slider"]["step"];
    ASSERT_GT(step, 0);
    ASSERT_LT(lo, hi);
    const double n = (hi - lo) / step;
    EXPECT_NEAR(n, std::round(n), 1e-9);
    if (f["type"] == "int") EXPECT_EQ(step, std::round(step));
    EXPECT_NO_THROW(parse_field_value(*find_field(name), lo, "slider"));
    EXPECT_NO_THROW(parse_field_value(*find_field(name), hi, "slider"));
    const double def = f["default"];
    EXPECT_TRUE(def >= lo && def <= hi) << def;
  }
  EXPECT_GE(essential, 10);
  EXPECT_LT(essential, int(schema["fields"].size()) / 2);  // the rest is under Advanced
  EXPECT_GE(sliders, 10);
  const auto label = [](const char* n) { return find_field(n)->label; };
  EXPECT_EQ(label("micro_batch_size"), "True batch size");
  EXPECT_EQ(label("grad_accumulation"), "Gradient accumulation");
  EXPECT_EQ(label("precize_slicing_overlap"), "Add overlapping blocks");
  EXPECT_EQ(label("save_steps"), "Save every N steps");
  EXPECT_TRUE(find_field("lora_rank")->essential);
  EXPECT_FALSE(find_field("adam_beta1")->essential);
  EXPECT_EQ(find_field("lora_rank")->slider_max, 1024);
  // A field the table does not know keeps its name as its label.
  std::vector<Field> unknown(1);
  unknown[0].name = "not_a_field";
  apply_field_words(unknown);
  EXPECT_EQ(unknown[0].label, "not_a_field");
  EXPECT_FALSE(unknown[0].essential);
  EXPECT_EQ(unknown[0].slider_step, 0);
}

// Found by fuzz/fuzz_train_params: a YAML value with invalid UTF-8 made the error message itself
// throw (json::dump), and a number beyond double in training_parameters.json escaped as
// nlohmann's out_of_range.
TEST(Params, InvalidUtf8AndHugeNumbersAreErrors) {
  auto dir = temp_dir("fuzzed");
  write_file_atomic(dir / "utf8.yaml", "lora_rank: 8\nlora_alpha: a\xFF\n");
  TrainParams p;
  EXPECT_ERROR_HAS(load_yaml_file(dir / "utf8.yaml", p), "utf8.yaml:2:1: lora_alpha expects an integer");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "utf8.yaml", p), "got \"a\xEF\xBF\xBD\"");  // U+FFFD for the bad byte
  // A float field given a value beyond int64 was converted to int64 anyway (UBSan).
  write_file_atomic(dir / "training_parameters.json", "{\"learning_rate\": 2e89}");
  EXPECT_ERROR_HAS(copy_params_from(dir, p), "training_parameters.json: key 'learning_rate': learning_rate expects");
  write_file_atomic(dir / "training_parameters.json", "{\"lora_rank\": 1e400}");
  EXPECT_ERROR_HAS(copy_params_from(dir, p),
                   "training_parameters.json: invalid JSON ([json.exception.out_of_range.406] number overflow");
  fs::remove_all(dir);
}

// The data keys bind the DataOptions inside TrainParams: what a key sets is what the data
// pipeline reads (no copy in between), and to_json gives back Training PRO's spellings.
TEST(Params, DataKeysBindTheDataOptionsDirectly) {
  TrainParams p;
  EXPECT_EQ(p.data.pad_to_multiple, 8);  // Training PRO's default, not the data pipeline's 1
  apply_json(json{{"packing", true},
                  {"eval_split_percent", "12.5"},
                  {"add_eos_token_type", "Hard Cut Blocks Only"},
                  {"length_to_sequential", "step"},
                  {"length_to_sequential_at", 40},
                  {"length_pairing_epochs", 2},
                  {"cutoff_len", 96},
                  {"jsonl_dataset", "chat.jsonl"},
                  {"format", "f.json"},
                  {"seed", 7}},
             p);
  EXPECT_TRUE(p.data.pack_samples);
  EXPECT_EQ(p.data.eval_split, 12.5);
  EXPECT_EQ(p.data.add_eos_token_type, EosPlacement::kHardCutOnly);
  EXPECT_EQ(p.data.length_schedule.to_sequential, LengthSwitch::kStep);
  EXPECT_EQ(p.data.length_schedule.switch_step(), 40);
  EXPECT_EQ(p.data.length_schedule.pairing_epochs, 2);
  EXPECT_EQ(p.data.cutoff_len, 96);
  EXPECT_EQ(p.data.rows_path(), "chat.jsonl");
  EXPECT_EQ(p.data.rows_format(), "");  // format is for dataset; JSONL rows are chat rows
  const json back = to_json(p);
  EXPECT_EQ(back["add_eos_token_type"], "Hard Cut Blocks Only");
  EXPECT_EQ(back["length_to_sequential"], "step");
  EXPECT_EQ(back["length_to_sequential_at"], 40.0);
  EXPECT_EQ(back["packing"], true);
  EXPECT_EQ(back["eval_split_percent"], 12.5);
  EXPECT_EQ(back["jsonl_dataset"], "chat.jsonl");
  // The run's options are p.data with the run's seed; nothing else is copied or changed.
  DataOptions o = data_options_from(p);
  EXPECT_EQ(o.seed, 7u);
  o.seed = p.data.seed;
  EXPECT_EQ(o, p.data);
  // An enum key still refuses what it does not know, with the same message as any choice.
  EXPECT_ERROR_HAS(apply_json(json{{"length_to_sequential", "Epoch"}}, p),
                   "JSON: length_to_sequential expects one of");
}

// chat_template_kwargs, one field for every front end: a JSON object (server, training_parameters.json),
// its JSON text (flag, web form), a YAML mapping with typed scalars; a bad key or value is
// refused naming the key.
TEST(Params, ChatTemplateKwargs) {
  TrainParams p;
  EXPECT_EQ(p.data.chat_template_kwargs, json::object());
  EXPECT_EQ(find_field("chat_template_kwargs")->cli_flag(), "--chat-template-kwargs");
  EXPECT_EQ(field_type_name(find_field("chat_template_kwargs")->type), "object");
  apply_json(json{{"chat_template_kwargs", {{"enable_thinking", false}}}}, p);
  EXPECT_EQ(p.data.chat_template_kwargs, (json{{"enable_thinking", false}}));
  apply_json(json{{"chat_template_kwargs", R"({"enable_thinking": true, "effort": "low"})"}}, p);
  EXPECT_EQ(p.data.chat_template_kwargs, (json{{"enable_thinking", true}, {"effort", "low"}}));
  apply_json(json{{"chat_template_kwargs", " "}}, p);  // an empty web form box
  EXPECT_EQ(p.data.chat_template_kwargs, json::object());
  // Saved as an object in training_parameters.json, and read back.
  p.data.chat_template_kwargs = {{"enable_thinking", false}};
  EXPECT_EQ(to_json(p)["chat_template_kwargs"], (json{{"enable_thinking", false}}));
  TrainParams q;
  apply_json(json::parse(to_json(p).dump()), q);
  EXPECT_EQ(q.data.chat_template_kwargs, p.data.chat_template_kwargs);

  EXPECT_ERROR_HAS(apply_json(json{{"chat_template_kwargs", {{"enable_thinking", {1}}}}}, p),
                   "JSON: chat_template_kwargs: 'enable_thinking' must be a bool, number, string or null, got array");
  EXPECT_ERROR_HAS(apply_json(json{{"chat_template_kwargs", {{"add_generation_prompt", true}}}}, p),
                   "chat_template_kwargs: 'add_generation_prompt' is set by tpro itself");
  EXPECT_ERROR_HAS(apply_json(json{{"chat_template_kwargs", "{enable_thinking: false}"}}, p),
                   "JSON: chat_template_kwargs expects an object of name: value (JSON text or a YAML mapping), got "
                   "\"{enable_thinking: false}\" (not JSON: ");
  EXPECT_ERROR_HAS(apply_json(json{{"chat_template_kwargs", json::array({1})}}, p),
                   "chat_template_kwargs expects an object of name: value");
  EXPECT_ERROR_HAS(apply_json(json{{"chat_template_kwargs", std::string(70000, ' ') + "x"}}, p), "(longer than 64 KiB)");

  auto dir = temp_dir("kwargs");
  write_file_atomic(dir / "run.yaml", "lora_rank: 8\nchat_template_kwargs:\n  enable_thinking: false\n  effort: low\n"
                                      "  n: 3\n  t: 0.5\n  quoted: \"true\"\n  none: ~\n");
  TrainParams y;
  load_yaml_file(dir / "run.yaml", y);
  EXPECT_EQ(y.data.chat_template_kwargs, (json{{"enable_thinking", false}, {"effort", "low"}, {"n", 3}, {"t", 0.5},
                                               {"quoted", "true"}, {"none", nullptr}}));
  write_file_atomic(dir / "bad.yaml", "chat_template_kwargs:\n  enable_thinking: [1, 2]\n");
  EXPECT_ERROR_HAS(load_yaml_file(dir / "bad.yaml", y),
                   "bad.yaml:1:1: chat_template_kwargs: 'enable_thinking' must be a bool, number, string or null, got array");
  write_file_atomic(dir / "map.yaml", "lora_rank:\n  a: 1\n");  // other keys still refuse mappings
  EXPECT_ERROR_HAS(load_yaml_file(dir / "map.yaml", y), "map.yaml:1:1: expected a value, got a mapping");

  TrainParams c = parse_cli({"--chat-template-kwargs", R"({"enable_thinking": false})"}, false);
  EXPECT_EQ(c.data.chat_template_kwargs, (json{{"enable_thinking", false}}));
  EXPECT_ERROR_HAS(parse_cli({"--chat-template-kwargs", R"({"bos_token": "x"})"}, false),
                   "--chat-template-kwargs: chat_template_kwargs: 'bos_token' is set by tpro itself");
  fs::remove_all(dir);
}
