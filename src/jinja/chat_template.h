// Chat templates rendered as Hugging Face transformers' apply_chat_template(tokenize=False)
// does: a Jinja template (trim_blocks, lstrip_blocks, loop controls, {% generation %}, the
// tojson/raise_exception/strftime_now additions) parsed once and rendered per conversation by
// tpro's own interpreter (src/jinja/), matching Python Jinja byte for byte.
// Not supported: template inheritance/includes, recursive loops, a few rarely used filters
// (see filters.cpp); each fails with a located tpro::Error instead of wrong text.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace tpro {

namespace jinja {
struct Template;
}

struct RenderedChat {
  std::string text;
  // [begin, end) byte ranges of text produced inside {% generation %} ... {% endgeneration %}
  // (what transformers' return_assistant_tokens_mask marks as assistant output).
  std::vector<std::pair<size_t, size_t>> generation_spans;
};

class ChatTemplate {
 public:
  // Parses `source` once. `origin` names the template in errors (a path, "tokenizer_config.json").
  // Throws tpro::Error "<origin>:<line>:<col>: <what>" for a template that cannot be parsed
  // (unclosed block, unknown tag/filter/test, bad syntax).
  explicit ChatTemplate(std::string source, std::string origin = "chat template");

  // Finds a model's template as transformers does: for a folder, chat_template.jinja (for
  // "default") or chat_templates/<name>.jinja, else tokenizer_config.json's "chat_template";
  // `path` may also name a .jinja file or a tokenizer_config.json. Throws tpro::Error naming
  // the path when there is none.
  static ChatTemplate load(const std::filesystem::path& path, std::string_view name = "default");

  // Renders with the full Jinja context: a JSON object of variable name -> value. Use
  // ordered_json to keep key order (it shows in tojson output, as Python dicts keep it);
  // nlohmann::json sorts keys. Throws tpro::Error "<origin>:<line>:<col>: <what>" when the
  // template fails (undefined used as an object, type errors, raise_exception(...)).
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const nlohmann::json& context) const;
  RenderedChat render_with_spans(const nlohmann::ordered_json& context) const;

  // What transformers passes: messages, tools=None, documents=None, add_generation_prompt,
  // then every key of `extra` (bos_token, eos_token, tools, enable_thinking, ...), which may
  // override the defaults.
  std::string apply(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                    const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
  std::string apply(const nlohmann::json& messages, bool add_generation_prompt,
                    const nlohmann::json& extra = nlohmann::json::object()) const;

  const std::string& source() const { return source_; }
  const std::string& origin() const { return origin_; }

 private:
  std::string source_, origin_;
  std::shared_ptr<const jinja::Template> tmpl_;
};

// The template in tokenizer_config.json's "chat_template" value: a string, or a list of
// {"name": ..., "template": ...} (transformers' named templates), from which the one called
// `name` is taken. Throws tpro::Error naming `origin` and the available names otherwise.
std::string select_chat_template(const nlohmann::ordered_json& value, std::string_view name = "default",
                                 const std::string& origin = "tokenizer_config.json");

}  // namespace tpro
