// CLI11 options for every parameter; see params_cli.h. The options capture raw text only;
// typing and range checks happen in parse_field_value() after the YAML layer is applied.
#include "train/params_cli.h"

#include <memory>

#include "core/log.h"
#include "train/suggest.h"

namespace tpro {

namespace {

struct CliState {
  std::string config;
  std::vector<CLI::Option*> options;         // parallel to param_fields()
  std::vector<std::string> text;             // raw value per field (scalars)
  std::vector<std::vector<std::string>> lists;  // raw values per field (string lists)
};

std::string default_text(const Field& f) {
  nlohmann::json v = f.default_value();
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) return join_names(v.get<std::vector<std::string>>(), ",");
  return v.dump();
}

CLI::Option* add_field_option(CLI::App* app, const Field& f, CliState& st, size_t i) {
  std::string group;
  for (const auto& g : param_groups())
    if (f.group == g.id) group = g.title;
  std::string help = f.label + ". " + f.help;
  if (f.type == FieldType::Choice) help += " {" + join_names(f.choices) + "}";
  CLI::Option* opt = nullptr;
  if (f.type == FieldType::Bool) {
    // --x sets true, --no-x false; --x=false/no/0 also work (CLI11 turns them into -1).
    std::string bare = f.cli_flag().substr(2);
    std::string* slot = &st.text[i];
    opt = app->add_flag(
        "--" + bare + ",!--no-" + bare, [slot](int64_t n) { *slot = n > 0 ? "true" : "false"; }, help);
  } else if (f.type == FieldType::StringList) {
    opt = app->add_option(f.cli_flag(), st.lists[i], help)->delimiter(',')->type_name("LIST");
  } else {
    const char* type = f.type == FieldType::Int ? "INT" : f.type == FieldType::Float ? "FLOAT" : "TEXT";
    opt = app->add_option(f.cli_flag(), st.text[i], help)->type_name(type);
  }
  return opt->default_str(default_text(f))->group(group);
}

void apply_given_flags(const CliState& st, TrainParams& p) {
  const auto& fields = param_fields();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (st.options[i]->count() == 0) continue;
    nlohmann::json v = fields[i].type == FieldType::StringList ? nlohmann::json(st.lists[i]) : nlohmann::json(st.text[i]);
    set_field(p, fields[i], v, fields[i].cli_flag());
  }
}

void resolve(const CliState& st, TrainParams* out, bool validate_after) {
  // First pass only finds copy_params_from, which may come from the YAML or a flag.
  TrainParams probe;
  if (!st.config.empty()) load_yaml_file(st.config, probe);
  apply_given_flags(st, probe);
  TrainParams p;
  if (!probe.copy_params_from.empty()) {
    for (const auto& key : copy_params_from(probe.copy_params_from, p))
      log_info("copy_params_from ", probe.copy_params_from, ": ignored '", key, "': ", copy_params_note(key));
  }
  if (!st.config.empty()) load_yaml_file(st.config, p);
  apply_given_flags(st, p);
  if (validate_after) validate(p);
  *out = std::move(p);
}

}  // namespace

void bind_cli(CLI::App* app, TrainParams* out, bool validate_after) {
  auto st = std::make_shared<CliState>();
  const auto& fields = param_fields();
  st->text.resize(fields.size());
  st->lists.resize(fields.size());
  app->add_option("-c,--config", st->config, "YAML file of training parameters (flags given here override it)")
      ->type_name("FILE")
      ->group("General");
  for (size_t i = 0; i < fields.size(); ++i) st->options.push_back(add_field_option(app, fields[i], *st, i));
  // CLI11 runs a subcommand's callback before it handles --help and leftover arguments; let
  // those report first rather than "model is required".
  app->parse_complete_callback([app, st, out, validate_after] {
    for (const CLI::Option* help : {static_cast<const CLI::Option*>(app->get_help_ptr()), app->get_help_all_ptr()})
      if (help && help->count() > 0) return;
    if (app->remaining_size() > 0) return;
    resolve(*st, out, validate_after);
  });
}

}  // namespace tpro
