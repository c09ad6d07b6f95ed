// PEFT adapter config and tensor names; see peft.h.
#include "io/peft.h"

#include <nlohmann/json.hpp>
#include <algorithm>
#include <regex>

#include "core/error.h"

namespace tpro {

using nlohmann::json;

std::string adapter_config_json(const AdapterConfig& c) {
  json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["r"] = c.r;
  j["lora_alpha"] = c.lora_alpha;
  j["lora_dropout"] = c.lora_dropout;
  j["target_modules"] = c.target_modules;
  j["use_rslora"] = c.use_rslora;
  if (c.use_dora) j["use_dora"] = true;  // a key older PEFT versions would refuse: only when used
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["base_model_name_or_path"] = c.base_model_name_or_path;
  if (!c.modules_to_save.empty()) j["modules_to_save"] = c.modules_to_save;
  return j.dump(2) + "\n";
}

AdapterConfig parse_adapter_config(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for "1e400"
    fail(origin, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(origin, ": not a JSON object");
  // find(), not value(): value() throws nlohmann's type_error for a key of another type (fuzz_peft_adapter).
  const auto pt = j.find("peft_type");
  if (pt != j.end() && *pt != "LORA")
    fail(origin, ": peft_type is ", pt->is_string() ? pt->get<std::string>() : pt->dump(), ", tpro reads LORA adapters");
  AdapterConfig c;
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() <= 0)
    fail(origin, ": \"r\" must be a positive integer");
  c.r = j["r"].get<int64_t>();
  if (j.contains("lora_alpha") && j["lora_alpha"].is_number()) c.lora_alpha = j["lora_alpha"].get<double>();
  if (j.contains("lora_dropout") && j["lora_dropout"].is_number()) c.lora_dropout = j["lora_dropout"].get<double>();
  if (j.contains("use_rslora") && j["use_rslora"].is_boolean()) c.use_rslora = j["use_rslora"].get<bool>();
  if (j.contains("use_dora") && j["use_dora"].is_boolean()) c.use_dora = j["use_dora"].get<bool>();
  if (const auto iw = j.find("init_lora_weights"); iw != j.end() && iw->is_string()) c.init_lora_weights = *iw;
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    c.base_model_name_or_path = j["base_model_name_or_path"];
  if (j.contains("fan_in_fan_out") && j["fan_in_fan_out"] == true) fail(origin, ": fan_in_fan_out adapters (GPT-2 Conv1D) are not supported");
  if (j.contains("bias") && j["bias"].is_string() && j["bias"] != "none")
    fail(origin, ": bias \"", j["bias"].get<std::string>(), "\" adapters are not supported (hint: bias must be none)");
  if (!j.contains("target_modules")) fail(origin, ": missing \"target_modules\"");
  if (j["target_modules"].is_string()) {
    fail(origin, ": target_modules is a regular expression; tpro needs an explicit list");
  }
  for (const auto& t : j["target_modules"]) {
    if (!t.is_string()) fail(origin, ": target_modules must be strings");
    c.target_modules.push_back(t.get<std::string>());
  }
  if (const auto ms = j.find("modules_to_save"); ms != j.end() && !ms->is_null()) {
    if (!ms->is_array()) fail(origin, ": modules_to_save must be a list of module names or null, got ", ms->dump());
    for (const auto& t : *ms) {
      if (!t.is_string() || (t != "embed_tokens" && t != "lm_head"))
        fail(origin, ": modules_to_save lists ", t.dump(), ", tpro saves only \"embed_tokens\" and \"lm_head\" ",
             "(hint: an adapter with other trained modules cannot be used here)");
      if (std::find(c.modules_to_save.begin(), c.modules_to_save.end(), t.get<std::string>()) == c.modules_to_save.end())
        c.modules_to_save.push_back(t.get<std::string>());
    }
  }
  return c;
}

std::string peft_saved_module_tensor_name(const std::string& module) {
  return module == "lm_head" ? "base_model.model.lm_head.weight" : cat("base_model.model.model.", module, ".weight");
}

std::string parse_peft_saved_module_tensor_name(const std::string& name) {
  for (const char* m : {"embed_tokens", "lm_head"})
    if (name == peft_saved_module_tensor_name(m)) return m;
  return "";
}

std::string peft_tensor_name(int64_t layer, const std::string& module, bool is_a, const std::string& hf_prefix) {
  return cat("base_model.model.", hf_prefix, "layers.", layer, ".", module, is_a ? ".lora_A.weight" : ".lora_B.weight");
}

std::string peft_magnitude_name(int64_t layer, const std::string& module, const std::string& hf_prefix) {
  return cat("base_model.model.", hf_prefix, "layers.", layer, ".", module, ".lora_magnitude_vector");
}

bool parse_peft_magnitude_name(const std::string& name, int64_t* layer, std::string* module) {
  static const std::regex re(
      R"(^base_model\.model\.(?:model\.|model\.language_model\.|language_model\.model\.)layers\.(\d{1,9})\.(\w+\.\w+)\.lora_magnitude_vector(\.default)?(\.weight)?$)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  *layer = std::stoll(m[1].str());
  *module = m[2].str();
  return true;
}

bool parse_peft_tensor_name(const std::string& name, int64_t* layer, std::string* module, bool* is_a) {
  static const std::regex re(
      R"(^base_model\.model\.(?:model\.|model\.language_model\.|language_model\.model\.)layers\.(\d{1,9})\.(\w+\.\w+)\.lora_([AB])(\.default)?\.weight$)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  *layer = std::stoll(m[1].str());
  *module = m[2].str();
  *is_a = m[3].str() == "A";
  return true;
}

}  // namespace tpro
