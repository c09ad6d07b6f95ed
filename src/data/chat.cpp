// Chat row parsing and assistant-only loss masks by prefix rendering; see chat.h.
#include "data/chat.h"

#include <algorithm>

#include "core/error.h"

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
  }
  return msgs;
}

Block chat_block(const std::vector<ChatMessage>& msgs, const ChatRender& render, const TokenCodec& codec,
                 const SpecialTokens& sp, bool train_all, const std::string& where) {
  std::string full_text = render_or_fail(render, msgs, false, where);
  std::vector<int32_t> full = codec.encode(full_text);
  std::vector<uint8_t> mask(full.size(), train_all ? 1 : 0);
  for (size_t k = 0; k < msgs.size() && !train_all; ++k) {
    if (msgs[k].role != "assistant") continue;
    std::vector<ChatMessage> head(msgs.begin(), msgs.begin() + int64_t(k));
    std::string pre;
    if (k > 0) {
      pre = render_or_fail(render, head, true, where);
      // Some templates' generation prompt differs from how the turn renders later: then the
      // header is trained too rather than guessing where it ends.
      if (!starts_with(full_text, pre)) pre = render_or_fail(render, head, false, where);
    }
    head.push_back(msgs[k]);
    std::string post = render_or_fail(render, head, false, where);
    if (!starts_with(full_text, pre) || !starts_with(full_text, post))
      fail(where, ": the chat template renders the first ", k + 1,
           " messages differently from the start of the whole conversation, so assistant turn ", k,
           " cannot be located (hint: set train_on_inputs to train on every token)");
    int64_t a = token_boundary(codec, full, full_text, pre.size());
    int64_t b = token_boundary(codec, full, full_text, post.size());
    std::fill(mask.begin() + a, mask.begin() + std::max(a, b), uint8_t(1));
  }
  Block blk = finish_block(std::move(full), std::move(mask), codec, sp);
  blk.kind = BlockKind::kChat;
  blk.source = BlockSource::kDataset;
  return blk;
}

}  // namespace tpro
