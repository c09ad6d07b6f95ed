// Fuzzes the Jinja interpreter through ChatTemplate: the input is a template source, parsed
// once and rendered with a fixed conversation (system, user, assistant with a tool call, tool,
// user) and a plain one (user, assistant, user: templates that insist on alternating roles),
// tools, bos/eos tokens and add_generation_prompt, as transformers' apply_chat_template does. A template that loops forever or builds a huge string is a finding too (libFuzzer's
// -timeout and -rss_limit_mb). Expected outcome for bad templates: tpro::Error.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "jinja/chat_template.h"

using namespace tpro;
using ojson = nlohmann::ordered_json;

namespace {

const ojson& messages() {
  static const ojson m = ojson::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi <b>there</b>, 2+2?"},
    {"role": "assistant", "content": "4", "tool_calls": [
      {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
    {"role": "tool", "content": "{\"sum\": 4}"},
    {"role": "user", "content": "Thanks \u00e9\ud83d\ude42"}
  ])");
  return m;
}

const ojson& plain_messages() {
  static const ojson m = ojson::parse(R"([
    {"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello! "}, {"role": "user", "content": ""}
  ])");
  return m;
}

const ojson& extra() {
  static const ojson e = ojson::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false,
    "tools": [{"type": "function", "function": {"name": "add", "description": "a+b",
               "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}]
  })");
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<ChatTemplate> t;
  try {
    t = std::make_unique<ChatTemplate>(std::string(reinterpret_cast<const char*>(data), size), "fuzz.jinja");
  } catch (const Error& e) {
    fuzz::expected(e);
    return 0;
  }
  for (const ojson* msgs : {&messages(), &plain_messages()}) {
    try {
      (void)t->apply(*msgs, true, extra());
      ojson ctx = extra();
      ctx["messages"] = *msgs;
      ctx["add_generation_prompt"] = false;
      (void)t->render_with_spans(ctx);
    } catch (const Error& e) {
      fuzz::expected(e);
    }
  }
  return 0;
}
