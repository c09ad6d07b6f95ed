// YAML and command-line text of training parameters; see params_text.h.
#include "train/params_text.h"

#include "core/error.h"

namespace tpro {

using nlohmann::json;

namespace {

bool is_default(const Field& f, const TrainParams& p) { return f.get(p) == f.default_value(); }

// A YAML scalar for a value of the table: strings double-quoted with JSON's escapes (a YAML
// double-quoted scalar takes them all), so "true", "null", "3" or "" stay strings; numbers and
// bools plain; lists in flow style.
std::string yaml_value(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// The flag's argument: what parse_field_value reads back to the same value.
std::string flag_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ",") + e.get<std::string>();
    return s;
  }
  return v.dump();
}

}  // namespace

std::string params_to_yaml(const TrainParams& p) {
  std::string out =
      "# tpro training parameters: tpro train --config FILE (flags given there override these).\n"
      "# Only the values that differ from the defaults; see tpro train --help for the others.\n";
  for (const ParamGroup& g : param_groups()) {
    bool titled = false;
    for (const Field& f : param_fields()) {
      if (f.group != g.id || is_default(f, p)) continue;
      if (!titled) out += cat("# ", g.title, "\n");
      titled = true;
      out += cat(f.name, ": ", yaml_value(f.get(p)), "\n");
    }
  }
  return out;
}

std::vector<std::string> params_to_argv(const TrainParams& p) {
  std::vector<std::string> argv = {"tpro", "train"};
  for (const ParamGroup& g : param_groups()) {
    for (const Field& f : param_fields()) {
      if (f.group != g.id || is_default(f, p)) continue;
      const json v = f.get(p);
      if (f.type == FieldType::Bool) {
        argv.push_back(v.get<bool>() ? f.cli_flag() : "--no-" + f.cli_flag().substr(2));
        continue;
      }
      // --flag=value: a value that starts with '-' is not taken for another flag.
      argv.push_back(cat(f.cli_flag(), "=", flag_text(v)));
    }
  }
  return argv;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string shell_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + shell_quote(a);
  return out;
}

}  // namespace tpro
