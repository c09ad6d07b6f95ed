// Request parsing and checking; see request.h.
#include "server/request.h"

#include <algorithm>
#include <cmath>

#include "data/builtin_templates.h"
#include "data/text_files.h"
#include "formats/load.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "server/api_error.h"

namespace tpro {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kDefaultMaxLength = 2048;  // `tpro perplexity`'s window when max_length is 0

void require_object(const json& body, const char* what) {
  if (!body.is_object()) bad_request("", cat("expected a JSON object of ", what, ", got ", body.type_name()));
}

// A base model inside --models that load_model can read: a GGUF file (resolve() followed its
// links and kept it inside) or a Hugging Face folder.
fs::path model_input(const PathSandbox& sb, const std::string& path, const std::string& field) {
  if (path.empty()) bad_request(field, cat(field, " is required: choose a base model in the models folder"));
  fs::path dir = sb.resolve(Root::Models, path, field);
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) {
    if (!is_gguf_file(dir))
      bad_request(field, cat(field, ": '", path, "' is a file but not a GGUF model (it does not start with the GGUF",
                             " magic; hint: a .gguf file, or a Hugging Face folder with config.json)"));
    return dir;
  }
  if (!fs::is_directory(dir) || !fs::exists(dir / "config.json"))
    bad_request(field, cat(field, ": '", path, "' is not a model folder (no config.json in it; hint: a Hugging Face",
                           " folder with config.json, *.safetensors and tokenizer.json, or a .gguf file)"));
  // config.json, the tokenizer files and the shards are read from here: none may lead out.
  sb.check_links(Root::Models, dir, field, 0);
  std::vector<fs::path> shards;
  try {
    shards = safetensors_shards(dir);
  } catch (const Error& e) {
    bad_request(field, cat(field, ": ", e.what()));
  }
  for (const fs::path& f : shards) {
    std::error_code ec;
    const fs::path real = fs::canonical(f, ec);
    if (ec || !sb.contains(Root::Models, real))
      bad_request(field, cat(field, ": shard '", sb.display(Root::Models, f), "' leads outside the models folder ",
                             sb.root(Root::Models).string(), " (to ", real.string(), ")"));
  }
  return dir;
}

// An adapter folder (or a file in one) the job reads or writes: links in it must stay in --loras.
void check_adapter_links(const PathSandbox& sb, const fs::path& dir, const std::string& field, int depth) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) sb.check_links(Root::Loras, dir, field, depth);
}

// The folder a run writes, output_dir / lora_name, with every link followed (a link as
// lora_name, dangling or not, or one inside an existing adapter folder) must stay in --loras.
void check_run_folder(const PathSandbox& sb, const TrainParams& p) {
  const fs::path dir = fs::path(p.output_dir) / p.lora_name;
  fs::path real;
  try {
    real = resolve_links(dir);
  } catch (const std::exception& e) {
    bad_request("lora_name", cat("lora_name: cannot resolve '", p.lora_name, "': ", e.what()));
  }
  if (!sb.contains(Root::Loras, real))
    bad_request("lora_name", cat("lora_name: '", p.lora_name, "' is a symlink that leads outside the loras folder ",
                                 sb.root(Root::Loras).string(), " (to ", real.string(),
                                 "; hint: tpro serve only writes inside --loras)"));
  check_adapter_links(sb, real, "lora_name", 2);  // the adapter's files and checkpoint-*/ files
}

fs::path data_file(const PathSandbox& sb, const std::string& path, const std::string& field, bool folder_ok) {
  fs::path f = sb.resolve(Root::Data, path, field);
  const bool folder = fs::is_directory(f);
  if (folder && !folder_ok) bad_request(field, cat(field, ": '", path, "' is a folder, expected a file"));
  if (!folder && !fs::is_regular_file(f)) bad_request(field, cat(field, ": '", path, "' is not a regular file"));
  if (folder) {
    sb.check_links(Root::Data, f, field, 0);  // nothing in it leads out of --data
    try {
      list_text_files(f);  // and the data layer's own rules (a .txt, links stay in the folder)
    } catch (const Error& e) {
      bad_request(field, cat(field, ": ", e.what()));
    }
  }
  return f;
}

void apply_body_keys(const json& body, TrainParams& p) {
  for (const auto& [key, value] : body.items()) {
    const Field* f = find_field(key);
    try {
      if (!f) {
        json one = json::object();
        one[key] = value;
        apply_json(one, p, "");  // throws the unknown-key message with its did-you-mean
      }
      set_field(p, *f, value, "");
    } catch (const Error& e) {
      bad_request(key, e.what());
    }
  }
}

void sandbox_paths(const json& body, const PathSandbox& sb, TrainParams& p) {
  p.model = model_input(sb, p.model, "model").string();
  struct DataField {
    std::string DataOptions::*member;
    const char* name;
    bool folder_ok;
  };
  for (const DataField& d : {DataField{&DataOptions::raw_text_file, "raw_text_file", true},
                             DataField{&DataOptions::dataset, "dataset", false},
                             DataField{&DataOptions::eval_dataset, "eval_dataset", false},
                             DataField{&DataOptions::format, "format", false},
                             DataField{&DataOptions::jsonl_dataset, "jsonl_dataset", false},
                             DataField{&DataOptions::jsonl_eval_dataset, "jsonl_eval_dataset", false}})
    if (std::string& v = p.data.*d.member; !v.empty()) v = data_file(sb, v, d.name, d.folder_ok).string();
  // A template file is data too; a built-in template's name is no path.
  if (std::string& t = p.data.chat_template_file; !t.empty() && !builtin_chat_template(t))
    t = data_file(sb, t, "chat_template_file", false).string();
  // output_dir only counts when the request names it: a copied or default value means --loras.
  const auto od = body.find("output_dir");
  if (od != body.end() && od->is_string() && !od->get<std::string>().empty())
    p.output_dir = sb.resolve(Root::Loras, p.output_dir, "output_dir", false).string();
  else
    p.output_dir = sb.root(Root::Loras).string();
  if (!p.copy_params_from.empty())
    p.copy_params_from = sb.resolve(Root::Loras, p.copy_params_from, "copy_params_from").string();
  if (!p.resume_from_checkpoint.empty() && p.resume_from_checkpoint != "latest") {
    p.resume_from_checkpoint = sb.resolve(Root::Loras, p.resume_from_checkpoint, "resume_from_checkpoint").string();
    check_adapter_links(sb, p.resume_from_checkpoint, "resume_from_checkpoint", 1);
  }
}

int64_t int_value(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  int64_t v = 0;
  if (it->is_number_integer()) v = it->get<int64_t>();
  else if (it->is_number_float() && std::fabs(it->get<double>()) < 9e15 &&
           it->get<double>() == std::floor(it->get<double>()))
    v = int64_t(it->get<double>());
  else if (it->is_string() && !it->get<std::string>().empty()) {
    const std::string& s = it->get_ref<const std::string&>();
    size_t used = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size()) bad_request(key, cat(key, " expects an integer, got ", it->dump()));
  } else {
    bad_request(key, cat(key, " expects an integer, got ", it->dump()));
  }
  if (v < lo || v > hi) bad_request(key, cat(key, " must be in [", lo, ", ", hi, "], got ", v));
  return v;
}

std::string string_value(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return "";
  if (!it->is_string()) bad_request(key, cat(key, " expects a string, got ", it->dump()));
  return it->get<std::string>();
}

void reject_unknown(const json& body, std::initializer_list<const char*> known) {
  for (const auto& [key, value] : body.items()) {
    bool ok = false;
    std::string list;
    for (const char* k : known) {
      ok = ok || key == k;
      list += (list.empty() ? "" : ", ") + std::string(k);
    }
    if (!ok) bad_request(key, cat("unknown key '", key, "' (expected ", list, ")"));
  }
}

}  // namespace

json parse_json_body(const std::string& body) {
  // The parser reports a number too large for a double ("1e400") without a position: the
  // last key it read is the field to name.
  std::string top_key, key;
  const json::parser_callback_t track = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key) {
      key = parsed.get<std::string>();
      if (depth == 1) top_key = key;
    }
    return true;
  };
  try {
    json j = json::parse(body, track);
    if (!j.is_object()) bad_request("", cat("expected a JSON object, got ", j.type_name()));
    return j;
  } catch (const json::parse_error& e) {
    bad_request("", cat("invalid JSON at byte ", e.byte, ": ", e.what()));
  } catch (const json::out_of_range& e) {
    const std::string what = e.what();
    const size_t q = what.find('\'');
    const std::string number = q == std::string::npos ? what : what.substr(q + 1, what.rfind('\'') - q - 1);
    bad_request(top_key, cat(key.empty() ? std::string("a value") : key, ": the number ", number,
                             " is out of range (JSON numbers must fit a double, at most about 1.8e308 in size)"));
  }
}

fs::path adapter_folder(const PathSandbox& sb, const std::string& name, const std::string& field) {
  if (name.empty() || name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos)
    bad_request(field, cat(field, " must be the name of an adapter folder in the loras folder, got '", name, "'"));
  fs::path dir = sb.resolve(Root::Loras, name, field);
  if (!fs::is_directory(dir)) bad_request(field, cat(field, ": '", name, "' is not a folder"));
  sb.check_links(Root::Loras, dir, field, 2);
  return dir;
}

// The adapter a job reads (lora): a GGUF LoRA file or a PEFT adapter folder, named in --loras.
fs::path lora_input(const PathSandbox& sb, const std::string& name, const std::string& field) {
  if (!name.empty() && name != "." && name != ".." && name.find_first_of("/\\") == std::string::npos) {
    const fs::path p = sb.resolve(Root::Loras, name, field);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      if (!is_gguf_file(p))
        bad_request(field, cat(field, ": '", name, "' is a file but not a GGUF LoRA adapter (hint: ", field,
                               " names ", lora_forms(), " in the loras folder)"));
      return p;
    }
  }
  const fs::path dir = adapter_folder(sb, name, field);
  if (!fs::exists(dir / "adapter_config.json"))
    bad_request(field, cat(field, ": '", name, "' has no adapter_config.json (an unfinished run?)"));
  return dir;
}

TrainParams train_params_from_request(const json& body, const PathSandbox& sb, bool for_check) {
  require_object(body, "training parameters");
  TrainParams p;
  const auto cp = body.find("copy_params_from");
  if (cp != body.end() && cp->is_string() && !cp->get<std::string>().empty()) {
    const fs::path dir = sb.resolve(Root::Loras, cp->get<std::string>(), "copy_params_from");
    check_adapter_links(sb, dir, "copy_params_from", 0);
    try {
      copy_params_from(dir, p, sb.root(Root::Data));
    } catch (const Error& e) {
      bad_request("copy_params_from", e.what());
    }
  }
  apply_body_keys(body, p);
  sandbox_paths(body, sb, p);
  const bool placeholder = for_check && p.lora_name.empty();
  if (placeholder) p.lora_name = "dataset-check";
  try {
    validate(p);
  } catch (const Error& e) {
    bad_request(field_in_message(e.what()), e.what());
  }
  if (placeholder) p.lora_name.clear();
  else if (!for_check) check_run_folder(sb, p);
  return p;
}

PerplexityJob perplexity_job_from_request(const json& body, const PathSandbox& sb) {
  require_object(body, "perplexity settings");
  reject_unknown(body, {"model", "lora", "text_file", "stride", "max_length", "threads", "comment"});
  PerplexityJob j;
  j.model_name = string_value(body, "model");
  j.model = model_input(sb, j.model_name, "model");
  j.model_name = sb.display(Root::Models, j.model);
  j.lora_name = string_value(body, "lora");
  if (!j.lora_name.empty()) j.lora = lora_input(sb, j.lora_name, "lora");
  const std::string text = string_value(body, "text_file");
  if (text.empty()) bad_request("text_file", "text_file is required: a text file in the data folder");
  j.text_file = data_file(sb, text, "text_file", false);
  j.dataset_name = sb.display(Root::Data, j.text_file);
  LlamaConfig cfg;
  try {
    cfg = load_model_config(j.model);
  } catch (const Error& e) {
    bad_request("model", cat("model: ", e.what()));
  }
  j.max_length = int_value(body, "max_length", 0, 0, cfg.max_position);
  if (j.max_length == 0) j.max_length = std::min<int64_t>(cfg.max_position, kDefaultMaxLength);  // as the CLI
  j.stride = int_value(body, "stride", std::min<int64_t>(512, j.max_length), 1, j.max_length);
  j.threads = int_value(body, "threads", 0, 0, 4096);
  j.comment = string_value(body, "comment");
  return j;
}

namespace {

// Where an export writes: `out` (or the default name) inside its folder, never the folder
// itself, an input or a folder holding one; an existing output only with overwrite, and of
// the same kind (file or folder) as the one to write.
fs::path export_output(const PathSandbox& sb, const ExportJob& j, Root root, const std::string& out,
                       const char* ext) {
  if (ext && fs::path(out).extension() != ext)
    bad_request("out", cat("out: '", out, "' must end in ", ext, " (hint: the ", export_kind_name(j.kind),
                           " export writes a ", ext, " file)"));
  const fs::path p = sb.resolve(root, out, "out", false);
  if (p == sb.root(root)) bad_request("out", cat("out: '", out, "' is the ", root_name(root), " folder itself"));
  std::error_code ec;
  if (!fs::is_directory(p.parent_path(), ec))
    bad_request("out", cat("out: the folder of '", out, "' does not exist in the ", root_name(root), " folder"));
  for (const fs::path& in : {j.lora, j.model})
    if (!in.empty() && (is_within(in, p) || is_within(p, in)))
      bad_request("out", cat("out: '", out, "' would overwrite an input of the export (", in.filename().string(),
                             "); choose another name"));
  if (fs::exists(fs::symlink_status(p, ec))) {
    const bool want_dir = j.kind == ExportKind::MergeHf;
    if (fs::is_directory(p, ec) != want_dir)
      bad_request("out", cat("out: '", out, "' exists and is ", want_dir ? "not a folder" : "a folder",
                             "; choose another name"));
    if (want_dir) sb.check_links(root, p, "out", 1);  // it is replaced whole: nothing in it leads out
    if (!j.overwrite)
      throw ApiError(409, "exists",
                     cat("out: '", out, "' already exists in the ", root_name(root),
                         " folder (hint: confirm to replace it, or choose another name)"),
                     "out");
  }
  return p;
}

}  // namespace

ExportJob export_job_from_request(const json& body, const PathSandbox& sb) {
  require_object(body, "export settings");
  reject_unknown(body, {"kind", "lora", "model", "out", "dtype", "overwrite", "include_checkpoints"});
  ExportJob j;
  const std::string kind = string_value(body, "kind");
  bool found = false;
  for (ExportKind k : {ExportKind::MergeHf, ExportKind::MergeGguf, ExportKind::AdapterGguf, ExportKind::Zip})
    if (kind == export_kind_name(k)) j.kind = k, found = true;
  if (!found)
    bad_request("kind", cat("kind must be merge, merge_gguf, adapter_gguf or zip, got '", kind, "'"));
  for (const char* flag : {"overwrite", "include_checkpoints"}) {
    const auto it = body.find(flag);
    if (it != body.end() && !it->is_boolean() && !it->is_null())
      bad_request(flag, cat(flag, " expects true or false, got ", it->dump()));
  }
  j.overwrite = body.value("overwrite", false);
  j.include_checkpoints = body.value("include_checkpoints", false);
  j.lora_name = string_value(body, "lora");
  const bool merge = j.kind == ExportKind::MergeHf || j.kind == ExportKind::MergeGguf;
  if (merge) {
    j.lora = lora_input(sb, j.lora_name, "lora");
  } else {
    j.lora = adapter_folder(sb, j.lora_name, "lora");
    if (j.kind == ExportKind::AdapterGguf && !fs::exists(j.lora / "adapter_config.json"))
      bad_request("lora", cat("lora: '", j.lora_name, "' has no adapter_config.json (an unfinished run?)"));
  }
  if (j.kind != ExportKind::Zip) {
    j.model = model_input(sb, string_value(body, "model"), "model");
    j.model_name = sb.display(Root::Models, j.model);
  } else if (!string_value(body, "model").empty()) {
    bad_request("model", "model: a zip export reads no base model; leave it out");
  }
  j.dtype = string_value(body, "dtype");
  if (j.dtype.empty()) j.dtype = "f32";
  const std::vector<std::string> types =
      j.kind == ExportKind::MergeGguf ? std::vector<std::string>{"f32", "bf16", "f16", "q8_0", "q4_0", "q4_k", "q6_k"}
      : j.kind == ExportKind::Zip     ? std::vector<std::string>{"f32"}
                                      : std::vector<std::string>{"f32", "bf16", "f16"};
  if (std::find(types.begin(), types.end(), j.dtype) == types.end()) {
    std::string list;
    for (const auto& t : types) list += (list.empty() ? "" : ", ") + t;
    bad_request("dtype", cat("dtype '", j.dtype, "' is not one the ", kind, " export writes (", list, ")"));
  }
  const std::string stem = fs::path(j.lora_name).stem().string();
  std::string out = string_value(body, "out");
  switch (j.kind) {
    case ExportKind::MergeHf:
      j.out = export_output(sb, j, Root::Models, out.empty() ? stem + "-merged" : out, nullptr);
      j.out_name = sb.display(Root::Models, j.out);
      break;
    case ExportKind::MergeGguf:
      j.out = export_output(sb, j, Root::Models, out.empty() ? stem + "-merged.gguf" : out, ".gguf");
      j.out_name = sb.display(Root::Models, j.out);
      break;
    case ExportKind::AdapterGguf:
      j.out = export_output(sb, j, Root::Loras, out.empty() ? stem + ".gguf" : out, ".gguf");
      j.out_name = sb.display(Root::Loras, j.out);
      break;
    case ExportKind::Zip:
      j.out = export_output(sb, j, Root::Loras, out.empty() ? stem + ".zip" : out, ".zip");
      j.out_name = sb.display(Root::Loras, j.out);
      break;
  }
  return j;
}

StopChange stop_change_from_request(const json& body) {
  require_object(body, "stop settings");
  reject_unknown(body, {"stop_at_loss", "stop_at_epoch"});
  if (body.empty()) bad_request("", "expected stop_at_loss and/or stop_at_epoch");
  StopChange c;
  for (const auto& [key, value] : body.items()) {
    json v;
    try {
      v = parse_field_value(*find_field(key), value, "");
    } catch (const Error& e) {
      bad_request(key, e.what());
    }
    if (key == "stop_at_loss") c.stop_at_loss = v.get<double>();
    else c.stop_at_epoch = v.get<int64_t>();
  }
  return c;
}

fs::path request_model_path(const PathSandbox& sb, const std::string& path, const std::string& field) {
  return model_input(sb, path, field);
}
int64_t request_int(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  return int_value(body, key, fallback, lo, hi);
}
std::string request_string(const json& body, const char* key) { return string_value(body, key); }
void request_keys(const json& body, std::initializer_list<const char*> known) { reject_unknown(body, known); }

}  // namespace tpro
