// Reading, writing and checking TrainParams through the field table (params_fields.cpp):
// JSON and YAML in, JSON out, the schema for the web form, validation, and Training PRO's
// training_parameters.json for "copy parameters from". Values are typed in one place,
// parse_field_value(), so every front end accepts and rejects the same things.
#include "train/params.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "data/chat.h"
#include "train/suggest.h"

namespace tpro {

namespace {

using json = nlohmann::json;

std::string prefix(std::string_view where) { return where.empty() ? std::string() : std::string(where) + ": "; }

std::string num_text(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return cat(int64_t(v));
  return cat(v);
}

std::string bounds_text(const Field& f) {
  if (f.has_min && f.has_max)
    return cat(f.min_exclusive ? "(" : "[", num_text(f.min), ", ", num_text(f.max), f.max_exclusive ? ")" : "]");
  if (f.has_min) return cat(f.min_exclusive ? "> " : ">= ", num_text(f.min));
  if (f.has_max) return cat(f.max_exclusive ? "< " : "<= ", num_text(f.max));
  return "";
}

std::string expectation(const Field& f) {
  switch (f.type) {
    case FieldType::Int:
      return "an integer " + std::string(f.has_max ? "in " : "") + bounds_text(f);
    case FieldType::Float:
      return "a number " + std::string(f.has_max ? "in " : "") + bounds_text(f);
    case FieldType::Bool:
      return "true or false";
    case FieldType::String:
      return "a string";
    case FieldType::Choice:
      return "one of " + join_names(f.choices);
    case FieldType::StringList:
      return "a list of " + join_names(f.choices);
    case FieldType::Object:
      return "an object of name: value (JSON text or a YAML mapping)";
  }
  return "";
}

[[noreturn]] void bad_value(const Field& f, const json& v, std::string_view where, const std::string& extra = "") {
  // replace: a YAML scalar may hold invalid UTF-8, which dump() would throw on.
  fail(prefix(where), f.name, " expects ", expectation(f), ", got ", v.dump(-1, ' ', false, json::error_handler_t::replace),
       extra);
}

bool parse_int_text(const std::string& s, int64_t* out) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  auto r = std::from_chars(b, e, *out);
  return r.ec == std::errc() && r.ptr == e && b != e;
}

bool parse_float_text(const std::string& s, double* out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}

bool parse_bool_text(std::string s, bool* out) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (s == "true" || s == "yes" || s == "on" || s == "1") return *out = true, true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return *out = false, true;
  return false;
}

bool in_bounds(const Field& f, double x) {
  if (f.has_min && (f.min_exclusive ? !(x > f.min) : !(x >= f.min))) return false;
  if (f.has_max && (f.max_exclusive ? !(x < f.max) : !(x <= f.max))) return false;
  return true;
}

json parse_number(const Field& f, const json& v, std::string_view where) {
  bool is_int = f.type == FieldType::Int;
  double x = 0;
  int64_t n = 0;
  if (v.is_number_integer()) {
    n = v.get<int64_t>();
    x = double(n);
  } else if (v.is_number_float()) {
    x = v.get<double>();
    if (!std::isfinite(x) || (is_int && (x != std::floor(x) || std::fabs(x) > 9e15))) bad_value(f, v, where);
    if (is_int) n = int64_t(x);  // only then is x known to fit (found by fuzz_train_params: 2e89 into int64)
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (is_int ? !parse_int_text(s, &n) : !parse_float_text(s, &x)) bad_value(f, v, where);
    if (is_int) x = double(n);
  } else {
    bad_value(f, v, where);
  }
  if (!in_bounds(f, x)) bad_value(f, v, where);
  return is_int ? json(n) : json(x);
}

json parse_list(const Field& f, const json& v, std::string_view where) {
  std::vector<std::string> items;
  if (v.is_null()) return json::array();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = std::min(s.find(',', start), s.size());
      std::string item = s.substr(start, end - start);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (!item.empty()) items.push_back(item);
      start = end + 1;
    }
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_string()) bad_value(f, v, where);
      items.push_back(e.get<std::string>());
    }
  } else {
    bad_value(f, v, where);
  }
  for (const auto& it : items)
    if (!f.choices.empty() && std::find(f.choices.begin(), f.choices.end(), it) == f.choices.end())
      bad_value(f, v, where, cat(" ('", it, "' is not one", did_you_mean(it, f.choices), ")"));
  return json(items);
}

// The only object field is chat_template_kwargs: its JSON text is parsed, then every key and
// value checked (data/chat.h), the error naming the key.
json parse_object(const Field& f, const json& v, std::string_view where) {
  json obj = v;
  if (v.is_null() || (v.is_string() && v.get_ref<const std::string&>().find_first_not_of(" \t\r\n") == std::string::npos))
    return json::object();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() > 64 * 1024) bad_value(f, json(s.substr(0, 64) + "..."), where, " (longer than 64 KiB)");
    try {
      obj = json::parse(s);
    } catch (const json::exception& e) {
      bad_value(f, v, where, cat(" (not JSON: ", e.what(), ")"));
    }
  }
  if (!obj.is_object()) bad_value(f, v, where);
  check_template_kwargs(obj, prefix(where) + f.name);
  return obj;
}

// Training PRO spellings of our keys (for hints and copy_params_from).
const std::map<std::string, std::string>& tpro_aliases() {
  static const std::map<std::string, std::string> m = {
      {"lora_RS", "use_rslora"},
      {"datasetJSONL", "jsonl_dataset"},
      {"eval_datasetJSONL", "jsonl_eval_dataset"},
      {"eval_stepsJSONL", "eval_steps"},
  };
  return m;
}

[[noreturn]] void unknown_key(const std::string& key, std::string_view where) {
  auto alias = tpro_aliases().find(key);
  if (alias != tpro_aliases().end())
    fail(prefix(where), "unknown key '", key, "' (did you mean '", alias->second, "'? '", key,
         "' is Training PRO's name for it)");
  fail(prefix(where), "unknown key '", key, "'", did_you_mean(key, param_names()));
}

// A YAML scalar typed as YAML 1.2's core schema does (for mapping values, which have no field
// type to convert to): a quoted scalar is a string; null/~, true/false, integers and floats
// are themselves; anything else is a string.
json yaml_scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return json(s);
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return json(nullptr);
  if (s == "true" || s == "True" || s == "TRUE") return json(true);
  if (s == "false" || s == "False" || s == "FALSE") return json(false);
  int64_t n64 = 0;
  double x = 0;
  if (parse_int_text(s, &n64)) return json(n64);
  if (parse_float_text(s, &x)) return json(x);
  return json(s);
}

// A mapping for an object field: plain keys to typed scalars; a nested list or mapping becomes
// an empty one of its kind, for the field's check to name the key.
json yaml_mapping(const YAML::Node& n, const std::string& where) {
  json o = json::object();
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) fail(where, ": mapping keys must be plain names");
    const YAML::Node& v = kv.second;
    o[kv.first.Scalar()] = v.IsScalar() ? yaml_scalar(v) : v.IsMap() ? json::object() : v.IsSequence() ? json::array() : json(nullptr);
  }
  return o;
}

json yaml_to_json(const YAML::Node& n, const std::string& where, bool mapping_ok = false) {
  if (mapping_ok && n.IsMap()) return yaml_mapping(n, where);
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return json(n.Scalar());
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& e : n) {
        if (!e.IsScalar()) fail(where, ": lists may only hold plain values");
        a.push_back(e.Scalar());
      }
      return a;
    }
    case YAML::NodeType::Map:
      fail(where, ": expected a value, got a mapping (parameters are one flat key: value list)");
  }
  return json(nullptr);
}

void check_run_inputs(const TrainParams& p);
void check_scheduler_params(const TrainParams& p);

}  // namespace

std::string_view field_type_name(FieldType t) {
  switch (t) {
    case FieldType::Int: return "int";
    case FieldType::Float: return "float";
    case FieldType::Bool: return "bool";
    case FieldType::String: return "string";
    case FieldType::Choice: return "choice";
    case FieldType::StringList: return "string-list";
    case FieldType::Object: return "object";
  }
  return "?";
}

std::string Field::cli_flag() const {
  std::string s = "--" + name;
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

json Field::default_value() const { return get(TrainParams{}); }

const Field* find_field(std::string_view name) {
  for (const auto& f : param_fields())
    if (f.name == name) return &f;
  return nullptr;
}

std::vector<std::string> param_names() {
  std::vector<std::string> v;
  for (const auto& f : param_fields()) v.push_back(f.name);
  return v;
}

json parse_field_value(const Field& f, const json& v, std::string_view where) {
  switch (f.type) {
    case FieldType::Int:
    case FieldType::Float:
      return parse_number(f, v, where);
    case FieldType::Bool: {
      bool b = false;
      if (v.is_boolean()) return v;
      if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) return json(v.get<int64_t>() == 1);
      if (v.is_string() && parse_bool_text(v.get<std::string>(), &b)) return json(b);
      bad_value(f, v, where);
    }
    case FieldType::String:
      if (v.is_null()) return json("");
      if (!v.is_string()) bad_value(f, v, where);
      return v;
    case FieldType::Choice: {
      if (!v.is_string()) bad_value(f, v, where);
      const std::string& s = v.get_ref<const std::string&>();
      if (std::find(f.choices.begin(), f.choices.end(), s) == f.choices.end())
        bad_value(f, v, where, did_you_mean(s, f.choices));
      return v;
    }
    case FieldType::StringList:
      return parse_list(f, v, where);
    case FieldType::Object:
      return parse_object(f, v, where);
  }
  bad_value(f, v, where);
}

void set_field(TrainParams& p, const Field& f, const json& v, std::string_view where) {
  f.put(p, parse_field_value(f, v, where));
}

void apply_json(const json& j, TrainParams& p, std::string_view where) {
  if (!j.is_object()) fail(prefix(where), "expected a JSON object of training parameters, got ", j.type_name());
  for (const auto& [key, value] : j.items()) {
    const Field* f = find_field(key);
    if (!f) unknown_key(key, where);
    set_field(p, *f, value, where);
  }
}

void apply_yaml(const YAML::Node& node, TrainParams& p, std::string_view where) {
  if (node.IsNull() || !node.IsDefined()) return;
  if (!node.IsMap()) fail(prefix(where), "expected a mapping of parameter: value, got a ", node.IsSequence() ? "list" : "plain value");
  for (const auto& kv : node) {
    std::string at = cat(where, ":", kv.first.Mark().line + 1, ":", kv.first.Mark().column + 1);
    if (!kv.first.IsScalar()) fail(at, ": keys must be plain names");
    const std::string key = kv.first.Scalar();
    const Field* f = find_field(key);
    if (!f) unknown_key(key, at);
    set_field(p, *f, yaml_to_json(kv.second, at, f->type == FieldType::Object), at);
  }
}

void apply_yaml_text(const std::string& text, TrainParams& p, std::string_view where) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(where, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg);
  }
  apply_yaml(node, p, where);
}

void load_yaml_file(const fs::path& path, TrainParams& p) { apply_yaml_text(read_file(path), p, path.string()); }

json to_json(const TrainParams& p) {
  json j = json::object();
  for (const auto& f : param_fields()) j[f.name] = f.get(p);
  return j;
}

json schema_json() {
  json groups = json::array();
  for (const auto& g : param_groups()) groups.push_back({{"id", g.id}, {"title", g.title}});
  json fields = json::array();
  for (const auto& f : param_fields()) {
    json e = {{"name", f.name},       {"type", field_type_name(f.type)}, {"group", f.group},
              {"help", f.help},       {"default", f.default_value()},     {"cli", f.cli_flag()}};
    e["label"] = f.label;
    e["essential"] = f.essential;
    if (f.slider_step > 0) e["slider"] = {{"min", f.slider_min}, {"max", f.slider_max}, {"step", f.slider_step}};
    if (f.has_min) e[f.min_exclusive ? "exclusive_min" : "min"] = f.min;
    if (f.has_max) e[f.max_exclusive ? "exclusive_max" : "max"] = f.max;
    if (!f.choices.empty()) e["choices"] = f.choices;
    fields.push_back(std::move(e));
  }
  return {{"groups", groups}, {"fields", fields}};
}

void validate(const TrainParams& p) {
  for (const auto& f : param_fields()) parse_field_value(f, f.get(p), "");
  check_run_inputs(p);
  check_scheduler_params(p);
  if (p.batch_size > 0 && p.batch_size < p.micro_batch_size)
    fail("batch_size (legacy) must be 0 or >= micro_batch_size (", p.micro_batch_size, "), got ", p.batch_size,
         " (hint: use grad_accumulation instead)");
  if (p.lora_modulessave && p.save_gguf)
    fail("save_gguf cannot write an adapter with lora_modulessave (Train Head): a llama.cpp LoRA adapter cannot carry ",
         "the trained embed_tokens and lm_head (hint: drop one of them; tpro merge writes a whole model instead)");
  if (p.lora_modulessave && (p.quantize_embedding != "none" || p.quantize_head != "none"))
    fail("quantize_embedding / quantize_head cannot be combined with lora_modulessave (Train Head): the trained ",
         "copies of embed_tokens and lm_head would start from the quantized values and be saved so, and the frozen ones ",
         "are not used (hint: drop quantize_embedding and quantize_head, or lora_modulessave)");
  if (p.report_to == "wandb")
    fail("report_to 'wandb' is not supported: tpro writes no wandb logs (hint: report_to tensorboard writes TensorBoard ",
         "event files into the adapter folder's runs/; `tensorboard --logdir <adapter folder>/runs` shows them)");
  if (p.early_stopping_patience > 0 && p.eval_steps <= 0)
    fail("early_stopping_patience ", p.early_stopping_patience, " needs evaluations during the run: set eval_steps > 0 ",
         "(hint: and an eval dataset or eval split)");
  if (p.use_dora && p.save_gguf)
    fail("use_dora with save_gguf: llama.cpp's GGUF LoRA adapters carry only A and B, not DoRA's magnitude vectors ",
         "(hint: leave save_gguf off and `tpro merge` the DoRA adapter into the base model)");
  if (p.sgd_nesterov && p.sgd_momentum <= 0.0 && p.optimizer == "sgd")
    fail("sgd_nesterov needs sgd_momentum > 0, got ", p.sgd_momentum,
         " (hint: set sgd_momentum, e.g. 0.9, or turn sgd_nesterov off; torch.optim.SGD refuses the same)");
  const LengthSchedule& ls = p.data.length_schedule;
  if (ls.to_sequential != LengthSwitch::kNever && !p.data.group_by_length)
    fail("length_to_sequential = '", length_switch_name(ls.to_sequential), "' needs group_by_length = true");
  if (ls.to_sequential != LengthSwitch::kNever && ls.at <= 0)
    fail("length_to_sequential_at must be > 0 when length_to_sequential is '", length_switch_name(ls.to_sequential),
         "', got ", ls.at);
  if (ls.loss_min > 0 && ls.to_sequential != LengthSwitch::kLoss)
    fail("length_to_sequential_loss_min = ", ls.loss_min, " needs length_to_sequential = 'loss', got '",
         length_switch_name(ls.to_sequential), "' (hint: it is the low end of the loss range [loss_min, ",
         "length_to_sequential_at])");
  if (ls.loss_min > 0 && ls.to_sequential == LengthSwitch::kLoss && ls.loss_min > ls.at)
    fail("the loss range [length_to_sequential_loss_min, length_to_sequential_at] = [", ls.loss_min, ", ", ls.at,
         "] is empty (hint: the low end must be <= length_to_sequential_at)");
}

namespace {

void check_run_inputs(const TrainParams& p) {
  if (p.model.empty()) fail("model is required (hint: --model PATH, or model: in the YAML config)");
  if (p.lora_name.empty()) fail("lora_name is required: the name of the adapter folder to create");
  if (p.lora_name == "." || p.lora_name == ".." || p.lora_name.find_first_of("/\\") != std::string::npos)
    fail("lora_name must be a plain folder name, got '", p.lora_name, "' (hint: put the parent folder in output_dir)");
  const DataOptions& d = p.data;
  bool raw = !d.raw_text_file.empty(), js = !d.dataset.empty(), jl = !d.jsonl_dataset.empty();
  if (!raw && !js && !jl) fail("no training data: set raw_text_file, dataset (with format) or jsonl_dataset");
  if (js && jl) fail("dataset ('", d.dataset, "') and jsonl_dataset ('", d.jsonl_dataset, "') are both set; use one");
  if (js && d.format.empty()) fail("dataset '", d.dataset, "' needs format: the file that turns records into prompts");
  if (!d.eval_dataset.empty() && !js) fail("eval_dataset is set but dataset is not (hint: jsonl_eval_dataset goes with jsonl_dataset)");
  if (!d.jsonl_eval_dataset.empty() && !jl) fail("jsonl_eval_dataset is set but jsonl_dataset is not");
  if (d.eval_split > 0 && (!d.eval_dataset.empty() || !d.jsonl_eval_dataset.empty()))
    fail("eval_split_percent = ", d.eval_split, " and an eval dataset are both set; use one");
  if (d.hybrid_training && !(raw && (js || jl)))
    fail("hybrid_training needs raw_text_file and a dataset or jsonl_dataset");
  if (!d.hybrid_training && raw && (js || jl))
    fail("raw_text_file and ", js ? "dataset" : "jsonl_dataset",
         " are both set (hint: set hybrid_training to mix them, or clear one)");
}

void check_scheduler_params(const TrainParams& p) {
  if (p.epochs <= 0 && p.max_steps <= 0) fail("epochs and max_steps are both 0: nothing to train");
  SchedulerType t = scheduler_from_name(p.lr_scheduler_type);
  if (t == SchedulerType::Polynomial && !(p.lr_end < p.learning_rate))
    fail("lr_end (", p.lr_end, ") must be smaller than learning_rate (", p.learning_rate, ") for polynomial");
  if (p.lr_scheduler_type.rfind("FP_", 0) == 0 && p.epochs <= 0)
    fail("lr_scheduler_type ", p.lr_scheduler_type, " measures its phases in epochs and needs epochs > 0, got ",
         p.epochs);
  if (t == SchedulerType::Fp3EpochRaiseHoldFall && p.epochs < 3)
    fail("lr_scheduler_type FP_3epoch_raise_hold_fall needs epochs >= 3 (rise, hold, fall), got ", p.epochs,
         " (hint: FP_low_epoch_annealing suits 2 epochs)");
}

// Keys Training PRO writes that tpro has no use for.
const std::set<std::string>& tpro_ui_only_keys() {
  static const std::set<std::string> s = {"higher_rank_limit", "dump_dataset",
                                          "dump_dataset_remove_s", "split_dataset_perc"};
  return s;
}

bool is_set_name(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty() && *it != "None";
}

// Training PRO keys whose meaning depends on another key, resolved before the copy (the
// object's keys iterate sorted, so "lora_RS_alpha" would come before "lora_alpha"):
// - lora_RS_alpha is the alpha of an rsLoRA run (lora_RS on; at least 1, as Training PRO
//   clamps it): its scale is lora_RS_alpha / sqrt(r), which is use_rslora with lora_alpha.
// - eval_stepsJSONL is eval_steps of a run on a JSONL dataset (datasetJSONL set).
// A pair that does not apply is dropped and reported as ignored.
// `source` records which key a value came from, for error messages.
json resolve_training_pro_pairs(json j, std::vector<std::string>* ignored, std::map<std::string, std::string>* source) {
  if (j.contains("lora_RS_alpha")) {
    const auto rs = j.find("lora_RS");
    if (rs != j.end() && ((rs->is_boolean() && rs->get<bool>()) || *rs == 1)) {
      json alpha = j["lora_RS_alpha"];
      if (alpha.is_number() && alpha.get<double>() < 1) alpha = 1;
      j["lora_alpha"] = alpha;
      (*source)["lora_alpha"] = "lora_RS_alpha";
    } else {
      ignored->push_back("lora_RS_alpha");
    }
    j.erase("lora_RS_alpha");
  }
  if (j.contains("report_to") && j["report_to"] == "wandb") {  // tpro's validate refuses it for a run
    ignored->push_back("report_to");
    j.erase("report_to");
  }
  if (j.contains("eval_stepsJSONL")) {
    if (is_set_name(j, "datasetJSONL")) {
      j["eval_steps"] = j["eval_stepsJSONL"];
      (*source)["eval_steps"] = "eval_stepsJSONL";
    } else {
      ignored->push_back("eval_stepsJSONL");
    }
    j.erase("eval_stepsJSONL");
  }
  return j;
}

const std::set<std::string>& never_copied() {
  static const std::set<std::string> s = {"lora_name", "always_override", "copy_params_from", "resume_from_checkpoint"};
  return s;
}

// Training PRO's places for a data value `name` (script.py: clean_path(TRAINING_DATASET_FOLDER,
// f'{raw_text_file}.txt') after trying the folder, f'{dataset}.json', f'{datasetJSONL}.jsonl',
// clean_path(TRAINING_FORMATS_FOLDER, f'{format}.json')), relative to the data root.
std::vector<std::string> training_pro_candidates(const std::string& key, const std::string& name) {
  if (key == "raw_text_file") return {name + ".txt"};
  if (key == "dataset" || key == "eval_dataset") return {name + ".json"};
  if (key == "jsonl_dataset" || key == "jsonl_eval_dataset") return {name + ".jsonl"};
  if (key == "format") return {"formats/" + name + ".json", name + ".json"};
  return {};
}

// The value as it stands when it names something under data_root (or is no plain relative
// name: absolute, or with a ".." that could leave the root); else its first existing candidate.
std::string training_pro_data_path(const std::string& key, const std::string& value, const fs::path& data_root) {
  const fs::path given(value);
  if (value.empty() || given.is_absolute()) return value;
  for (const auto& part : given)
    if (part == "..") return value;
  std::error_code ec;
  if (fs::exists(data_root / given, ec)) return value;
  for (const std::string& c : training_pro_candidates(key, value))
    if (fs::exists(data_root / c, ec)) return c;
  return value;
}

}  // namespace

std::vector<std::string> copy_params_from(const fs::path& adapter_dir, TrainParams& p, const fs::path& data_root,
                                          std::vector<std::string>* copied) {
  fs::path file = adapter_dir.filename() == "training_parameters.json" ? adapter_dir
                                                                       : adapter_dir / "training_parameters.json";
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const json::parse_error& e) {
    fail(file.string(), ": invalid JSON at byte ", e.byte, " (", e.what(), ")");
  } catch (const json::out_of_range& e) {  // a number beyond double, "1e400"
    fail(file.string(), ": invalid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(file.string(), ": expected a JSON object, got ", j.type_name());
  std::vector<std::string> ignored;
  std::map<std::string, std::string> source;
  j = resolve_training_pro_pairs(std::move(j), &ignored, &source);
  for (const auto& [key, original] : j.items()) {
    json value = original;
    std::string name = key;
    if (auto a = tpro_aliases().find(key); a != tpro_aliases().end()) name = a->second;
    const Field* f = find_field(name);
    if (!f || never_copied().count(name) || tpro_ui_only_keys().count(key)) {
      ignored.push_back(key);
      continue;
    }
    if (f->type == FieldType::String && value == "None") value = "";  // Training PRO's empty dropdown
    if (value.is_string() && !training_pro_candidates(name, "").empty())
      value = training_pro_data_path(name, value.get<std::string>(), data_root);
    const auto from = source.find(key);
    const std::string label = from == source.end() ? cat("key '", key, "'") : cat("key '", from->second, "' (as ", key, ")");
    set_field(p, *f, value, cat(file.string(), ": ", label));
    if (copied) copied->push_back(name);
  }
  std::sort(ignored.begin(), ignored.end());
  return ignored;
}

std::string copy_params_note(const std::string& key) {
  static const std::map<std::string, std::string> notes = {
      {"lora_name", "the new run names its own adapter"},
      {"always_override", "a choice of each run, never copied"},
      {"copy_params_from", "never copied"},
      {"resume_from_checkpoint", "a choice of each run, never copied"},
      {"higher_rank_limit", "Training PRO's slider range only; lora_rank is copied as it is"},
      {"report_to", "wandb is not supported (report_to tensorboard writes TensorBoard event files)"},
      {"lora_RS_alpha", "the alpha of an rsLoRA run, used only when lora_RS is on"},
      {"eval_stepsJSONL", "eval_steps of a JSONL run, used only when datasetJSONL is set"},
      {"dump_dataset", "Training PRO's dataset dump (tpro data dump-blocks does it)"},
      {"dump_dataset_remove_s", "Training PRO's dataset dump (tpro data dump-blocks does it)"},
      {"split_dataset_perc", "Training PRO's dataset split (tpro data split does it)"},
  };
  const auto it = notes.find(key);
  return it != notes.end() ? it->second : "not a tpro parameter";
}

fs::path adapter_dir(const TrainParams& p) { return fs::path(p.output_dir) / p.lora_name; }

std::vector<std::string> resolved_target_modules(const TrainParams& p) {
  if (!p.target_modules.empty()) return p.target_modules;
  const std::string& t = p.training_projection;
  if (t == "all") return {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  if (t == "q-k-v-o") return {"q_proj", "k_proj", "v_proj", "o_proj"};
  if (t == "q-k-v") return {"q_proj", "k_proj", "v_proj"};
  if (t == "k-v-down") return {"k_proj", "v_proj", "down_proj"};
  if (t == "q-v") return {"q_proj", "v_proj"};
  fail("training_projection expects one of q-v, q-k-v, q-k-v-o, k-v-down, all, got '", t, "'");
}

int64_t effective_grad_accumulation(const TrainParams& p) {
  if (p.batch_size > 0 && p.micro_batch_size > 0) return std::max<int64_t>(1, p.batch_size / p.micro_batch_size);
  return std::max<int64_t>(1, p.grad_accumulation);
}

int64_t micro_batches_to_steps(int64_t micro_batches, int64_t grad_accumulation) {
  const int64_t ga = std::max<int64_t>(1, grad_accumulation), n = std::max<int64_t>(0, micro_batches);
  return n / ga + (n % ga != 0);
}

int64_t optimizer_warmup_steps(const TrainParams& p) {
  return micro_batches_to_steps(p.warmup_steps, effective_grad_accumulation(p));
}

SchedulerSpec make_scheduler_spec(const TrainParams& p, int64_t total_steps, int64_t steps_per_epoch,
                                  int64_t grad_accumulation) {
  SchedulerSpec s;
  s.type = scheduler_from_name(p.lr_scheduler_type);
  s.base_lr = p.learning_rate;
  s.total_steps = total_steps;
  s.warmup_steps = grad_accumulation > 0 ? micro_batches_to_steps(p.warmup_steps, grad_accumulation)
                                         : optimizer_warmup_steps(p);
  s.warmup_ratio = p.warmup_ratio;
  s.epochs = p.epochs;
  s.steps_per_epoch = steps_per_epoch;
  s.num_cycles = p.num_cycles;
  s.power = p.power;
  s.lr_end = p.lr_end;
  return s;
}

}  // namespace tpro
