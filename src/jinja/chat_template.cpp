// ChatTemplate: parses with the Jinja front end, renders with the interpreter, adds
// transformers' globals (raise_exception, strftime_now) and turns interpreter errors into
// tpro::Error "<origin>:<line>:<col>: <what>".
#include "jinja/chat_template.h"

#include <ctime>

#include "core/error.h"
#include "core/file.h"
#include "jinja/parser.h"
#include "jinja/render.h"

namespace tpro {

namespace {

[[noreturn]] void rethrow(const jinja::JinjaError& e, const std::string& origin) {
  if (e.located()) throw Error(cat(origin, ":", e.line, ":", e.col, ": ", e.what()));
  throw Error(cat(origin, ": ", e.what()));
}

jinja::Value raise_exception_fn(jinja::CallArgs& a) {
  auto args = jinja::bind_args("raise_exception", a, {"message"});
  jinja::jinja_fail("raise_exception: ", args[0] ? args[0]->str() : std::string());
}

// datetime.now().strftime(format), as transformers defines strftime_now.
jinja::Value strftime_now_fn(jinja::CallArgs& a) {
  auto args = jinja::bind_args("strftime_now", a, {"format"}, 1);
  std::string fmt = args[0]->str();
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  if (fmt.empty()) return jinja::Value("");
  std::string buf(64 + fmt.size() * 8, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
  if (n == 0) jinja::jinja_fail("strftime_now: cannot format '", fmt, "'");
  buf.resize(n);
  return jinja::Value(buf);
}

template <typename Json>
std::vector<std::pair<std::string, jinja::Value>> context_vars(const Json& context, const std::string& origin) {
  if (!context.is_object()) {
    throw Error(cat(origin, ": the chat template context must be a JSON object, got ", context.type_name()));
  }
  std::vector<std::pair<std::string, jinja::Value>> vars;
  vars.emplace_back("raise_exception", jinja::Value::callable("raise_exception", raise_exception_fn));
  vars.emplace_back("strftime_now", jinja::Value::callable("strftime_now", strftime_now_fn));
  try {
    for (auto it = context.begin(); it != context.end(); ++it) vars.emplace_back(it.key(), jinja::from_json(it.value()));
  } catch (const jinja::JinjaError& e) {
    rethrow(e, origin);
  }
  return vars;
}

template <typename Json>
Json apply_context(const Json& messages, bool add_generation_prompt, const Json& extra, const std::string& origin) {
  if (!messages.is_array()) throw Error(cat(origin, ": messages must be a JSON array, got ", messages.type_name()));
  if (!extra.is_object() && !extra.is_null()) {
    throw Error(cat(origin, ": extra template variables must be a JSON object, got ", extra.type_name()));
  }
  Json ctx = Json::object();
  ctx["messages"] = messages;
  ctx["tools"] = nullptr;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) ctx[it.key()] = it.value();
  }
  return ctx;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source, std::string origin) : source_(std::move(source)), origin_(std::move(origin)) {
  try {
    tmpl_ = jinja::parse_template(source_);
  } catch (const jinja::JinjaError& e) {
    rethrow(e, origin_);
  }
}

ChatTemplate ChatTemplate::load(const std::filesystem::path& path, std::string_view name) {
  namespace fs = std::filesystem;
  auto from_config = [&](const fs::path& cfg_path) {
    nlohmann::ordered_json cfg;
    try {
      cfg = nlohmann::ordered_json::parse(read_file(cfg_path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(cat(cfg_path.string(), ": invalid JSON: ", e.what()));
    }
    if (!cfg.is_object() || !cfg.contains("chat_template") || cfg["chat_template"].is_null()) {
      throw Error(cat(cfg_path.string(), ": no \"chat_template\" (hint: add chat_template.jinja next to it or ",
                      "pass a template explicitly)"));
    }
    return ChatTemplate(select_chat_template(cfg["chat_template"], name, cfg_path.string()), cfg_path.string());
  };
  if (!fs::is_directory(path)) {
    if (path.extension() == ".json") return from_config(path);
    return ChatTemplate(read_file(path), path.string());
  }
  fs::path jinja = name == "default" ? path / "chat_template.jinja" : path / "chat_templates" / (std::string(name) + ".jinja");
  if (fs::exists(jinja)) return ChatTemplate(read_file(jinja), jinja.string());
  if (fs::exists(path / "tokenizer_config.json")) return from_config(path / "tokenizer_config.json");
  throw Error(cat(path.string(), ": no chat template (looked for ", jinja.filename().string(),
                  " and tokenizer_config.json)"));
}

RenderedChat ChatTemplate::render_with_spans(const nlohmann::ordered_json& context) const {
  auto vars = context_vars(context, origin_);
  try {
    jinja::RenderResult r = jinja::render_template(*tmpl_, vars);
    return RenderedChat{std::move(r.text), std::move(r.generation_spans)};
  } catch (const jinja::JinjaError& e) {
    rethrow(e, origin_);
  }
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_with_spans(context).text;
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  auto vars = context_vars(context, origin_);
  try {
    return jinja::render_template(*tmpl_, vars).text;
  } catch (const jinja::JinjaError& e) {
    rethrow(e, origin_);
  }
}

std::string ChatTemplate::apply(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                const nlohmann::ordered_json& extra) const {
  return render(apply_context(messages, add_generation_prompt, extra, origin_));
}

std::string ChatTemplate::apply(const nlohmann::json& messages, bool add_generation_prompt,
                                const nlohmann::json& extra) const {
  return render(apply_context(messages, add_generation_prompt, extra, origin_));
}

std::string select_chat_template(const nlohmann::ordered_json& value, std::string_view name,
                                 const std::string& origin) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array()) {
    throw Error(cat(origin, ": chat_template must be a string or a list of {\"name\", \"template\"}, got ",
                    value.type_name()));
  }
  std::string names;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto& e = value[i];
    if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e["name"].is_string() ||
        !e["template"].is_string()) {
      throw Error(cat(origin, ": chat_template[", i, "] must be {\"name\": string, \"template\": string}"));
    }
    if (e["name"].get<std::string>() == name) return e["template"].get<std::string>();
    names += (names.empty() ? "'" : ", '") + e["name"].get<std::string>() + "'";
  }
  throw Error(cat(origin, ": no chat template named '", name, "' (available: ", names.empty() ? "none" : names,
                  ")"));
}

}  // namespace tpro
