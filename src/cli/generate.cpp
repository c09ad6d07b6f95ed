// `tpro generate`: test-drive a base model, with or without a LoRA adapter; streams text.
// --chat wraps the prompt in the model's chat template as one user turn (with
// --chat-template-kwargs' variables, as training renders its rows) and stops at the token the
// template closes a reply with (<|im_end|>, <|eot_id|>, ...) as well as at end-of-text. The prompt plus
// --max-new-tokens (and --max-context) must fit the model's context (max_position_embeddings):
// the KV cache is sized from them, so a huge number is an error naming the flag, not an allocation.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "data/chat.h"
#include "formats/load.h"
#include "data/end_of_turn.h"
#include "jinja/chat_template.h"
#include "kernels/backend.h"
#include "model/generate.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace tpro::cli {
namespace {

constexpr int64_t kMaxNewTokens = int64_t(1) << 20;  // checked before the model loads (its context comes after)

struct GenArgs {
  std::string model, lora, prompt, prompt_file, device = "cpu", kwargs_text;
  bool chat = false;
  nlohmann::json kwargs = nlohmann::json::object();  // --chat-template-kwargs, checked
  int64_t max_context = 0;
  SamplingParams sp;
};

int run(const GenArgs& a) {
  const std::unique_ptr<Backend> be = make_backend(a.device);
  Model m = load_model(a.model);
  Tokenizer tok = Tokenizer::load(a.model);
  LoraWeights lw;
  const LoraWeights* lp = nullptr;
  if (!a.lora.empty()) {
    lw = load_lora(a.lora, m.cfg);
    lp = &lw;
  }
  int32_t end_of_turn = -1;  // with --chat: the token the template closes a reply with
  std::string text = a.prompt_file.empty() ? a.prompt : read_file(a.prompt_file);
  if (a.chat) {
    if (tok.chat_template().empty()) fail(a.model, ": the tokenizer has no chat template (hint: drop --chat)");
    ChatTemplate ct(tok.chat_template(), a.model);
    nlohmann::json extra = {{"bos_token", tok.bos_token()}, {"eos_token", tok.eos_token()}};
    extra.update(a.kwargs);
    const ChatRender render = [&](const std::vector<ChatMessage>& msgs, bool gen) {
      nlohmann::json j = nlohmann::json::array();
      for (const ChatMessage& m : msgs) j.push_back({{"role", m.role}, {"content", m.content}});
      return ct.apply(j, gen, extra);
    };
    const std::vector<ChatMessage> turn = {{"user", text}};
    end_of_turn = end_of_turn_id(render, tok, turn);
    text = render(turn, true);
  }
  std::vector<int32_t> prompt = tok.encode(text, !a.chat);
  if (a.chat && tok.add_bos() && tok.bos_id() >= 0 && (prompt.empty() || prompt[0] != tok.bos_id()) &&
      text.rfind(tok.bos_token(), 0) != 0)
    prompt.insert(prompt.begin(), tok.bos_id());
  if (prompt.empty()) fail("the prompt encodes to no tokens (hint: give --prompt text)");
  SamplingParams sp = a.sp;
  if (tok.eos_id() >= 0) sp.stop_ids.push_back(tok.eos_id());
  if (end_of_turn >= 0) sp.stop_ids.push_back(end_of_turn);
  const int64_t limit = m.cfg.max_position, n_prompt = int64_t(prompt.size());
  if (a.max_context > limit)
    fail("--max-context ", a.max_context, " is larger than the model's context of ", limit,
         " tokens (max_position_embeddings in ", a.model, ") (hint: --max-context ", limit, " or less)");
  if (n_prompt >= limit)
    fail("the prompt is ", n_prompt, " tokens, the model's context is ", limit,
         " tokens: no room for new tokens (hint: shorten the prompt)");
  if (n_prompt + sp.max_new_tokens > limit)
    fail("--max-new-tokens ", sp.max_new_tokens, ": the prompt (", n_prompt, " tokens) and the new tokens need ",
         n_prompt + sp.max_new_tokens, " tokens, more than the model's context of ", limit,
         " (max_position_embeddings in ", a.model, ") (hint: --max-new-tokens ", limit - n_prompt, " or less)");
  const int64_t ctx = a.max_context > 0 ? a.max_context : n_prompt + sp.max_new_tokens;
  Generator g(*be, m, lp, ctx);
  std::fwrite(text.data(), 1, text.size(), stdout);
  StreamDecoder out(tok, prompt);  // in context: keeps the space before the first new word
  g.generate(prompt, sp, [&](int32_t id) {
    if (id != tok.eos_id() && id != end_of_turn) {
      const std::string piece = out.push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  std::fputc('\n', stdout);
  return 0;
}

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<GenArgs>();
  sub->add_option("--model", a->model, "Base model folder or .gguf file")->required();
  sub->add_option("--device", a->device, "Where the model runs (this build: cpu)")->default_val("cpu");
  sub->add_option("--lora", a->lora, "Adapter to apply: PEFT folder or GGUF adapter file");
  sub->add_option("--prompt", a->prompt, "Prompt text");
  sub->add_option("--prompt-file", a->prompt_file, "Read the prompt from a file");
  sub->add_flag("--chat", a->chat, "Wrap the prompt in the model's chat template as a user turn");
  sub->add_option("--chat-template-kwargs", a->kwargs_text,
                  "Extra chat template variables for --chat as a JSON object, e.g. '{\"enable_thinking\": false}'");
  sub->add_option("--max-new-tokens", a->sp.max_new_tokens, "Tokens to generate (prompt + these fit the context)")
      ->default_val(128)
      ->check(CLI::PositiveNumber);
  sub->add_option("--temperature", a->sp.temperature, "0 = greedy")->default_val(0.7)->check(CLI::Range(0.0, 100.0));
  sub->add_option("--top-k", a->sp.top_k, "Keep the k most likely tokens (0 = off)")->default_val(40)->check(CLI::NonNegativeNumber);
  sub->add_option("--top-p", a->sp.top_p, "Nucleus sampling mass (1 = off)")->default_val(0.95)->check(CLI::Range(0.0, 1.0));
  sub->add_option("--repetition-penalty", a->sp.repetition_penalty, "1 = off")->default_val(1.0)->check(CLI::Range(0.5, 10.0));
  sub->add_option("--seed", a->sp.seed, "Sampling seed")->default_val(0);
  sub->add_option("--max-context", a->max_context, "KV-cache length (default: prompt + new tokens)")
      ->check(CLI::NonNegativeNumber);
  return [a] {
    if (a->prompt.empty() && a->prompt_file.empty()) fail("give --prompt or --prompt-file");
    if (!a->kwargs_text.empty()) {
      if (!a->chat) fail("--chat-template-kwargs is for the chat template: add --chat");
      try {
        a->kwargs = nlohmann::json::parse(a->kwargs_text);
      } catch (const nlohmann::json::exception& e) {
        fail("--chat-template-kwargs: not JSON: ", e.what(), " (hint: '{\"enable_thinking\": false}')");
      }
      check_template_kwargs(a->kwargs, "--chat-template-kwargs");
    }
    if (a->sp.max_new_tokens > kMaxNewTokens)
      fail("--max-new-tokens ", a->sp.max_new_tokens, " is more than ", kMaxNewTokens,
           " (hint: the prompt and the new tokens must fit the model's context, often 2048 to 131072 tokens)");
    return run(*a);
  };
}

TPRO_COMMAND("generate", "Generate text with a base model and optional LoRA adapter", setup);

}  // namespace
}  // namespace tpro::cli
