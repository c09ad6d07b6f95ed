// The Playground's request body, checked field by field (playground.h): every path inside its
// served folder (request.h's checks, symlinks included), every number in its range, every text
// under its size cap, and the keys of one mode only. Nothing is loaded here.
#include <cmath>

#include "data/builtin_templates.h"
#include "server/api_error.h"
#include "server/playground.h"
#include "server/request.h"

namespace tpro {

using nlohmann::json;

namespace {

constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;  // exact in a JavaScript number

double number_value(const json& body, const char* key, double fallback, double lo, double hi) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  double v = 0;
  if (it->is_number()) {
    v = it->get<double>();
  } else if (it->is_string() && !it->get<std::string>().empty()) {
    const std::string& s = it->get_ref<const std::string&>();
    size_t used = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size()) bad_request(key, cat(key, " expects a number, got ", it->dump()));
  } else {
    bad_request(key, cat(key, " expects a number, got ", it->dump()));
  }
  if (!std::isfinite(v) || v < lo || v > hi) bad_request(key, cat(key, " must be in [", lo, ", ", hi, "], got ", v));
  return v;
}

bool bool_value(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_boolean()) bad_request(key, cat(key, " expects true or false, got ", it->dump()));
  return it->get<bool>();
}

void check_size(size_t& total, size_t add, const char* field) {
  total += add;
  if (total > kPlaygroundMaxPromptChars)
    bad_request(field, cat(field, ": the prompt is over ", kPlaygroundMaxPromptChars,
                           " characters (hint: shorten it, or clear the chat)"));
}

// [{role, content}], roles system (first only), user and assistant, ending with a user turn.
std::vector<ChatMessage> chat_messages(const json& body, const std::string& system) {
  const auto it = body.find("messages");
  if (it == body.end() || it->is_null() || (it->is_array() && it->empty()))
    bad_request("messages", "messages: write a message first (chat mode needs at least one user message)");
  if (!it->is_array()) bad_request("messages", cat("messages expects a list of {role, content}, got ", it->type_name()));
  if (it->size() > kPlaygroundMaxMessages)
    bad_request("messages", cat("messages: ", it->size(), " messages, at most ", kPlaygroundMaxMessages,
                                " (hint: clear the chat)"));
  std::vector<ChatMessage> out;
  size_t chars = system.size();
  check_size(chars, 0, "system");
  if (!system.empty()) out.push_back({"system", system});
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = cat("messages[", i, "]");
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string() || m.size() != 2)
      bad_request("messages", cat(where, " must be {\"role\": ..., \"content\": \"...\"}, got ", m.dump()));
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant")
      bad_request("messages", cat(where, ": role must be system, user or assistant, got '", role, "'"));
    if (role == "system" && (i > 0 || !system.empty()))
      bad_request("messages", cat(where, ": a system message may only come first, and only without the separate ",
                                  "system prompt"));
    check_size(chars, m["content"].get_ref<const std::string&>().size(), "messages");
    out.push_back({role, m["content"].get<std::string>()});
  }
  if (out.back().role != "user")
    bad_request("messages", cat("messages: the last message must be the user's (the model answers it), got ",
                                out.back().role));
  return out;
}

}  // namespace

PlaygroundRequest playground_request_from(const json& body, const PathSandbox& sb) {
  if (!body.is_object()) bad_request("", cat("expected a JSON object of playground settings, got ", body.type_name()));
  request_keys(body, {"model", "lora", "mode", "messages", "system", "prompt", "chat_template", "side_by_side",
                      "max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed"});
  PlaygroundRequest r;
  r.model_name = request_string(body, "model");
  r.model = request_model_path(sb, r.model_name, "model");
  r.model_name = sb.display(Root::Models, r.model);
  r.lora_name = request_string(body, "lora");
  if (!r.lora_name.empty()) r.lora = lora_input(sb, r.lora_name, "lora");
  const std::string mode = body.contains("mode") && !body["mode"].is_null() ? request_string(body, "mode") : "chat";
  if (mode != "chat" && mode != "completion")
    bad_request("mode", cat("mode must be chat or completion, got '", mode, "'"));
  r.chat = mode == "chat";
  if (r.chat) {
    if (body.contains("prompt") && !body["prompt"].is_null())
      bad_request("prompt", "prompt is for completion mode; chat mode takes messages (and system)");
    r.messages = chat_messages(body, request_string(body, "system"));
    r.chat_template = request_string(body, "chat_template");
    if (!r.chat_template.empty() && !builtin_chat_template(r.chat_template))
      bad_request("chat_template", cat("chat_template: '", r.chat_template, "' is not a built-in template (hint: ",
                                       builtin_chat_template_names(), ", or empty for the model's own)"));
  } else {
    for (const char* k : {"messages", "system", "chat_template"})
      if (body.contains(k) && !body[k].is_null())
        bad_request(k, cat(k, " is for chat mode; completion mode takes prompt"));
    r.prompt = request_string(body, "prompt");
    if (r.prompt.empty()) bad_request("prompt", "prompt: write the text to continue");
    size_t chars = 0;
    check_size(chars, r.prompt.size(), "prompt");
  }
  r.side_by_side = bool_value(body, "side_by_side");
  if (r.side_by_side && r.lora.empty())
    bad_request("side_by_side", "side_by_side compares the base with an adapter: choose an adapter (lora)");
  r.sp.max_new_tokens = request_int(body, "max_new_tokens", 256, 1, kPlaygroundMaxNewTokens);
  r.sp.temperature = number_value(body, "temperature", 0.7, 0.0, 5.0);
  r.sp.top_p = number_value(body, "top_p", 1.0, 0.0, 1.0);
  r.sp.top_k = request_int(body, "top_k", 0, 0, int64_t(1) << 24);
  r.sp.repetition_penalty = number_value(body, "repetition_penalty", 1.0, 0.5, 10.0);
  r.seed_given = body.contains("seed") && !body["seed"].is_null() && body["seed"] != "";
  if (r.seed_given) r.sp.seed = uint64_t(request_int(body, "seed", 0, 0, kMaxSeed));
  return r;
}

}  // namespace tpro
