// Chat row parsing and assistant-only loss masks by prefix rendering; see chat.h.
#include "data/chat.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "jinja/chat_template.h"

namespace tpro {

namespace {

using ojson = nlohmann::ordered_json;

// Role names accepted in "messages" and the ShareGPT "from" names mapped onto them.
std::string role_of(const std::string& r, bool sharegpt) {
  if (r == "system" || r == "user" || r == "assistant" || r == "tool") return r;
  if (sharegpt) {
    if (r == "human") return "user";
    if (r == "gpt" || r == "model" || r == "chatgpt") return "assistant";
    if (r == "function" || r == "observation") return "tool";
  }
  return "";
}

std::string content_of(const ojson& c, const std::string& where) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_null()) return "";
  if (c.is_array()) {  // OpenAI content parts: [{"type": "text", "text": "..."}]
    std::string out;
    for (const ojson& part : c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        fail(where, ": only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  fail(where, ": content must be a string, got ", c.type_name());
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

std::string render_or_fail(const ChatRender& render, const std::vector<ChatMessage>& msgs, bool gen,
                           const std::string& where) {
  try {
    return render(msgs, gen);
  } catch (const std::exception& e) {
    fail(where, ": chat template failed on the first ", msgs.size(), " messages: ", e.what());
  }
}

}  // namespace

void check_template_kwargs(const nlohmann::json& kwargs, const std::string& where) {
  static const char* const kReserved[] = {"messages", "add_generation_prompt", "bos_token", "eos_token",
                                          "tools",    "documents",             "raise_exception", "strftime_now"};
  if (!kwargs.is_object())
    fail(where, ": expected an object of template variables ({\"enable_thinking\": false}), got ", kwargs.type_name());
  if (kwargs.size() > kMaxTemplateKwargs)
    fail(where, ": ", kwargs.size(), " template variables, at most ", kMaxTemplateKwargs, " are allowed");
  for (const auto& [key, v] : kwargs.items()) {
    bool name_ok = !key.empty() && key.size() <= kMaxTemplateKwargKey && !std::isdigit((unsigned char)key[0]);
    for (char ch : key) name_ok = name_ok && (std::isalnum((unsigned char)ch) || ch == '_');
    if (!name_ok)
      fail(where, ": '", key.substr(0, kMaxTemplateKwargKey), key.size() > kMaxTemplateKwargKey ? "...": "",
           "' is not a template variable name (expected letters, digits and _, at most ", kMaxTemplateKwargKey,
           " characters, not starting with a digit)");
    for (const char* r : kReserved)
      if (key == r)
        fail(where, ": '", key, "' is set by tpro itself and cannot be a chat_template_kwargs key (hint: pass only the "
             "template's own switches, such as enable_thinking)");
    if (!(v.is_boolean() || v.is_number() || v.is_string() || v.is_null()))
      fail(where, ": '", key, "' must be a bool, number, string or null, got ", v.type_name(),
           " (hint: e.g. {\"enable_thinking\": false})");
    if (v.is_string() && v.get_ref<const std::string&>().size() > kMaxTemplateKwargString)
      fail(where, ": '", key, "' is a string of ", v.get_ref<const std::string&>().size(), " bytes, at most ",
           kMaxTemplateKwargString, " are allowed");
  }
}

ChatRender jinja_chat_render(std::string source, std::string origin, std::string bos_token, std::string eos_token,
                             const nlohmann::json& kwargs) {
  check_template_kwargs(kwargs, "chat_template_kwargs");
  auto tmpl = std::make_shared<const ChatTemplate>(std::move(source), std::move(origin));
  ojson extra = {{"bos_token", std::move(bos_token)}, {"eos_token", std::move(eos_token)}};
  for (const auto& [key, v] : kwargs.items()) extra[key] = ojson(v);
  return [tmpl, extra](const std::vector<ChatMessage>& msgs, bool gen) {
    ojson m = ojson::array();
    for (const ChatMessage& x : msgs) {
      m.push_back({{"role", x.role}, {"content", x.content}});
      if (x.reasoning_content) m.back()["reasoning_content"] = *x.reasoning_content;
    }
    return tmpl->apply(m, gen, extra);
  };
}

bool is_chat_row(const ojson& row) { return row.contains("messages") || row.contains("conversations"); }

std::vector<ChatMessage> parse_chat_row(const ojson& row, const std::string& where) {
  bool sharegpt = !row.contains("messages");
  const char* list_key = sharegpt ? "conversations" : "messages";
  const char* role_key = sharegpt ? "from" : "role";
  const char* text_key = sharegpt ? "value" : "content";
  auto it = row.find(list_key);
  if (it == row.end()) fail(where, ": no \"messages\" or \"conversations\" in the row");
  if (!it->is_array() || it->empty()) fail(where, ": \"", list_key, "\" must be a non-empty array");
  std::vector<ChatMessage> msgs;
  for (size_t i = 0; i < it->size(); ++i) {
    const ojson& m = (*it)[i];
    std::string at = cat(where, " ", list_key, "[", i, "]");
    if (!m.is_object()) fail(at, ": expected an object, got ", m.type_name());
    auto r = m.find(role_key);
    if (r == m.end() || !r->is_string()) fail(at, ": missing string \"", role_key, "\"");
    std::string role = role_of(r->get<std::string>(), sharegpt);
    if (role.empty())
      fail(at, ": unknown ", role_key, " \"", r->get<std::string>(), "\" (expected ",
           sharegpt ? "system, human, gpt or tool" : "system, user, assistant or tool", ")");
    auto c = m.find(text_key);
    if (c == m.end()) fail(at, ": missing \"", text_key, "\"");
    msgs.push_back({role, content_of(*c, at)});
    auto rc = m.find("reasoning_content");
    if (rc != m.end() && !rc->is_null()) {
      if (role != "assistant" || !rc->is_string())
        fail(at, ": \"reasoning_content\" must be a string on an assistant message, got ",
             role != "assistant" ? "one on a " + role + " message" : std::string(rc->type_name()),
             " (hint: put the thinking of an assistant turn there, or inline as <think>...</think> in its content)");
      msgs.back().reasoning_content = rc->get<std::string>();
    }
  }
  return msgs;
}

namespace {

// What the template appends after every conversation even without a generation prompt (some
// templates, e.g. Llama 3 base, always end with the assistant header): its render of no
// messages, when the full render ends with it. Not part of any assistant turn.
std::string trailing_suffix(const ChatRender& render, const std::string& full_text) {
  std::string g;
  try {
    g = render({}, false);
  } catch (const std::exception&) {
    return "";
  }
  bool suffix = !g.empty() && full_text.size() >= g.size() && full_text.compare(full_text.size() - g.size(), g.size(), g) == 0;
  return suffix ? g : "";
}

size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

size_t without_suffix(const std::string& s, const std::string& suffix) {
  bool ends = !suffix.empty() && s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  return ends ? s.size() - suffix.size() : s.size();
}

// Prefix rendering: the turn starts where render(messages[0..k), generation prompt) ends and
// ends where render(messages[0..k]) ends. False when the template re-renders earlier turns
// differently (then the renders are not prefixes of the full text).
bool span_by_prefix(const std::vector<ChatMessage>& msgs, size_t k, const ChatRender& render,
                    const std::string& full_text, const std::string& always, const std::string& where,
                    std::pair<size_t, size_t>& span) {
  std::vector<ChatMessage> head(msgs.begin(), msgs.begin() + int64_t(k));
  std::string pre = k > 0 ? render_or_fail(render, head, true, where) : "";
  head.push_back(msgs[k]);
  std::string post = render_or_fail(render, head, false, where);
  size_t end = without_suffix(post, always);
  if (!starts_with(full_text, pre) || end > full_text.size() || full_text.compare(0, end, post, 0, end) != 0)
    return false;
  span = {pre.size(), std::max(pre.size(), end)};
  return true;
}

// The text with newlines, tabs and control bytes written as escapes, for messages.
std::string escaped(std::string_view s) {
  std::string out;
  for (unsigned char ch : s) {
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (ch < 0x20) out += cat("\\x", "0123456789abcdef"[ch >> 4], "0123456789abcdef"[ch & 15]);
    else out += char(ch);
  }
  return out;
}

// Fallback for templates that render a turn differently once later turns follow (Qwen3 drops
// the <think> block of earlier turns, empty or not): the turn starts where the generation-prompt
// render of messages[0..k) ends when that is still a prefix of the full text; else before a
// marker byte put in front of the content, or, when the template drops that marker with the
// inline "<think>...</think>" it removes, where the text leaves the generation prompt (within
// what that prompt adds to the render of the turns before). It ends
// after a marker byte put behind the content, plus the closing (end-of-turn token, newline)
// that render(messages[0..k]) and the full text share after the content.
// A generation prompt the turn leaves and then resumes inside its own text (Qwen3 with
// enable_thinking=false ends the prompt with an empty think block; a turn with thinking opens
// a real one) has no prompt/answer split: such a row is refused.
std::pair<size_t, size_t> span_by_marker(const std::vector<ChatMessage>& msgs, size_t k, const ChatRender& render,
                                         const std::string& full_text, const std::string& always,
                                         const std::string& where) {
  auto marked = [&](size_t upto, const std::string& content) {
    std::vector<ChatMessage> m(msgs.begin(), msgs.begin() + int64_t(upto));
    m[k].content = content;
    return render_or_fail(render, m, false, where);
  };
  const std::string& c = msgs[k].content;
  std::vector<ChatMessage> head(msgs.begin(), msgs.begin() + int64_t(k));
  std::string pre = k > 0 ? render_or_fail(render, head, true, where) : "";
  head.push_back(msgs[k]);
  std::string after = marked(msgs.size(), c + "\x01");
  std::string post = render_or_fail(render, head, false, where), post_after = marked(k + 1, c + "\x01");
  size_t end = common_prefix(full_text, after), begin = pre.size();
  bool lost = after == full_text;
  if (!lost && (!starts_with(full_text, pre) || begin > end)) {
    const size_t left = common_prefix(full_text, pre);  // where the text leaves the generation prompt
    const std::string rest = pre.substr(left);
    if (!rest.empty() && left <= end &&
        std::string_view(full_text).substr(left, end - left).find(rest) != std::string_view::npos)
      fail(where, ": assistant turn ", k, " does not continue the generation prompt: the prompt ends with \"",
           escaped(pre.substr(pre.size() - std::min<size_t>(pre.size(), rest.size() + 16))),
           "\" but the turn leaves it after \"", escaped(full_text.substr(left - std::min<size_t>(left, 16), std::min<size_t>(left, 16))),
           "\" and takes up \"", escaped(rest), "\" again later, so no split into prompt and trained reply fits (hint: "
           "Qwen3 with chat_template_kwargs enable_thinking=false expects replies without thinking: drop the <think> "
           "block or reasoning_content from such rows, or leave enable_thinking unset)");
    std::string before = marked(msgs.size(), "\x01" + c);
    begin = common_prefix(full_text, before);
    if (before == full_text) {  // only where the text leaves what the prompt adds to the turns before
      std::vector<ChatMessage> turns(msgs.begin(), msgs.begin() + int64_t(k));
      const std::string plain = k > 0 ? render_or_fail(render, turns, false, where) : "";
      lost = !starts_with(full_text, plain) || left < without_suffix(plain, always);
      begin = left;
    }
  }
  size_t post_end = common_prefix(post, post_after), tail = without_suffix(post, always);
  if (lost || post_after == post || begin > end || post_end > tail)
    fail(where, ": the chat template renders the first ", k + 1, " messages differently from the whole "
         "conversation and assistant turn ", k, " cannot be located in it (hint: set train_on_inputs to train on "
         "every token)");
  size_t closing = common_prefix(std::string_view(post).substr(post_end, tail - post_end),
                                 std::string_view(full_text).substr(end));
  return {begin, end + closing};
}

}  // namespace

std::optional<std::vector<ChatMessage>> merge_system_into_user(const std::vector<ChatMessage>& msgs) {
  if (msgs.size() < 2 || msgs[0].role != "system" || msgs[1].role != "user") return std::nullopt;
  std::vector<ChatMessage> out(msgs.begin() + 1, msgs.end());
  out[0].content = msgs[0].content + "\n\n" + msgs[1].content;
  return out;
}

bool is_system_role_refusal(const std::string& error_text) {
  const size_t at = error_text.find("raise_exception:");
  if (at == std::string::npos) return false;
  std::string rest = error_text.substr(at);
  std::transform(rest.begin(), rest.end(), rest.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return rest.find("system") != std::string::npos;
}

Block chat_block(const std::vector<ChatMessage>& msgs, const ChatRender& render, const TokenCodec& codec,
                 const SpecialTokens& sp, bool train_all, const std::string& where) {
  std::string full_text = render_or_fail(render, msgs, false, where);
  std::vector<int32_t> full = codec.encode(full_text);
  std::vector<uint8_t> mask(full.size(), train_all ? 1 : 0);
  std::string always = train_all ? "" : trailing_suffix(render, full_text);
  for (size_t k = 0; k < msgs.size() && !train_all; ++k) {
    if (msgs[k].role != "assistant") continue;
    std::pair<size_t, size_t> span;
    if (!span_by_prefix(msgs, k, render, full_text, always, where, span))
      span = span_by_marker(msgs, k, render, full_text, always, where);
    auto [b, e] = span;
    int64_t a = token_boundary(codec, full, full_text, b);
    int64_t z = token_boundary(codec, full, full_text, std::max(b, e));
    std::fill(mask.begin() + a, mask.begin() + std::max(a, z), uint8_t(1));
  }
  Block blk = finish_block(std::move(full), std::move(mask), codec, sp);
  blk.kind = BlockKind::kChat;
  blk.source = BlockSource::kDataset;
  return blk;
}

}  // namespace tpro
