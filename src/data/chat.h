// Chat rows: OpenAI {"messages": [{role, content}]} and ShareGPT {"conversations": [{from,
// value}]}, rendered with the model's chat template. By default only assistant turns are
// trained: turn k's span runs from the end of render(messages[0..k), generation prompt) to the
// end of render(messages[0..k]), located in the canonical tokens of the full render, so the
// assistant header is not trained and the end-of-turn token is. Templates that always append
// the header, or re-render earlier turns (Qwen3), are handled; see docs/DATASETS.md.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/block.h"
#include "data/codec.h"

namespace tpro {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" or "tool"
  std::string content;
  // An assistant turn's separate thinking (OpenAI-style "reasoning_content"), passed to the
  // template as the message's reasoning_content key (Qwen3 renders it in a <think> block);
  // nullopt: the key is absent, as transformers would see the row.
  std::optional<std::string> reasoning_content = std::nullopt;
};

// The chat template as the data pipeline needs it: messages in, text out.
using ChatRender = std::function<std::string(const std::vector<ChatMessage>&, bool add_generation_prompt)>;

// A ChatRender over a Jinja chat template (jinja/chat_template.h), given bos_token and
// eos_token as transformers' apply_chat_template does, plus `kwargs` (chat_template_kwargs,
// e.g. enable_thinking; checked with check_template_kwargs). Parses the template once; throws
// Error naming `origin` when it cannot be parsed.
ChatRender jinja_chat_render(std::string source, std::string origin, std::string bos_token, std::string eos_token,
                             const nlohmann::json& kwargs = nlohmann::json::object());

// Limits of chat_template_kwargs: keys, key length, string value length.
constexpr size_t kMaxTemplateKwargs = 32, kMaxTemplateKwargKey = 64, kMaxTemplateKwargString = 4096;

// Checks extra chat template variables (`where` names them, "--chat-template-kwargs"): a JSON
// object of at most kMaxTemplateKwargs names ([A-Za-z_][A-Za-z0-9_]*) to a bool, number, string
// or null; none of the variables tpro sets itself (messages, add_generation_prompt,
// bos_token, eos_token, tools, documents, raise_exception, strftime_now). Throws Error naming
// the key, what was expected and what it got.
void check_template_kwargs(const nlohmann::json& kwargs, const std::string& where);

bool is_chat_row(const nlohmann::ordered_json& row);

// Reads the row's messages; ShareGPT roles map human->user, gpt->assistant. An assistant
// message's "reasoning_content" (a string or null) is kept. Throws naming `where` and the
// offending message on anything else.
std::vector<ChatMessage> parse_chat_row(const nlohmann::ordered_json& row, const std::string& where);

// For templates that refuse a system role (Gemma, Mistral v0.2: raise_exception("System role
// not supported")): the conversation with a leading system message folded into the first user
// turn ("<system>\n\n<user>"), as llama.cpp does; nullopt when there is nothing to fold.
std::optional<std::vector<ChatMessage>> merge_system_into_user(const std::vector<ChatMessage>& msgs);
// True for the error a template raises when it refuses a system message.
bool is_system_role_refusal(const std::string& error_text);

// Renders, tokenises and masks one conversation, then applies BOS/EOS (finish_block).
Block chat_block(const std::vector<ChatMessage>& msgs, const ChatRender& render, const TokenCodec& codec,
                 const SpecialTokens& sp, bool train_all, const std::string& where);

}  // namespace tpro
