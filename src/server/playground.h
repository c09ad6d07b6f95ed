// The web UI's Playground: text from a base model in --models, with or without a LoRA adapter
// from --loras, streamed token by token; "side by side" runs the base and the adapter on the
// same prompt and seed, one token of each in turn. Chat prompts are rendered with the model's
// chat template (or a built-in one), completions are raw text. One model is loaded at a time and
// kept between requests (another model unloads it first; an adapter whose files changed is read
// again); one generation runs at a time. Not here: HTTP (playground_routes.cpp), sampling and
// the KV cache (model/generate.h).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/chat.h"
#include "model/generate.h"
#include "server/sandbox.h"

namespace tpro {

constexpr int64_t kPlaygroundMaxNewTokens = 4096;           // per column, per request
constexpr size_t kPlaygroundMaxPromptChars = size_t(1) << 20;  // the prompt or all messages together
constexpr size_t kPlaygroundMaxMessages = 256;
constexpr int64_t kPlaygroundPrefillChunk = 64;  // prompt tokens fed between two stop checks

struct PlaygroundRequest {
  std::filesystem::path model, lora;  // resolved inside their folders; lora empty = the base alone
  std::string model_name, lora_name;  // as shown (relative to their folders)
  bool chat = true;
  std::vector<ChatMessage> messages;  // chat: an optional system message, then turns ending with a user turn
  std::string prompt;                 // completion: the raw text
  std::string chat_template;          // "" = the model's own; else a built-in name (chatml, ...)
  bool side_by_side = false;          // base and adapter columns (needs lora)
  SamplingParams sp;                  // stop_ids are added by prepare()
  bool seed_given = false;            // else prepare() draws one (and reports it)
};

// {model, lora?, mode: "chat" | "completion", messages?: [{role, content}], system?, prompt?,
//  chat_template?, side_by_side?, max_new_tokens?, temperature?, top_p?, top_k?,
//  repetition_penalty?, seed?}. ApiError 400 naming the field for anything else: unknown keys,
// wrong types, values out of range, paths outside their folders, prompts over the size caps.
PlaygroundRequest playground_request_from(const nlohmann::json& body, const PathSandbox& sb);

struct PlaygroundModel;    // a loaded base: weights, tokenizer, backend
struct PlaygroundAdapter;  // a loaded adapter

// A request made ready to run: the model (kept alive while it runs), the prompt's tokens.
struct PreparedGeneration {
  std::shared_ptr<const PlaygroundModel> model;
  std::shared_ptr<const PlaygroundAdapter> adapter;  // null: the base alone
  std::vector<std::string> columns;                   // "base" and/or "adapter", in turn order
  std::vector<int32_t> prompt;
  std::string prompt_text;  // after the chat template
  SamplingParams sp;        // eos and the template's end-of-turn token as stop ids; the seed drawn
  int64_t window = 0;       // KV cache length: prompt + new tokens
  std::vector<std::string> notes;  // e.g. max_new_tokens lowered to fit the context
};

// What a generation says as it goes: start, token (column, id, text), done (per column), end,
// error. Returning false stops it at once (the client has gone).
using PlaygroundEmit = std::function<bool(const std::string& type, const nlohmann::json& data)>;
// Polled between tokens: a reason to stop ("job" when a job has started), or "" to go on.
using PlaygroundInterrupt = std::function<std::string()>;

class Playground {
 public:
  // token_delay_ms: a pause after each round of tokens (0 in use; tests set it so that a
  // generation lasts long enough to watch and stop). The server reads TPRO_PLAYGROUND_DELAY_MS.
  explicit Playground(int token_delay_ms = 0);
  Playground(const Playground&) = delete;
  Playground& operator=(const Playground&) = delete;

  // The one generation slot: held until the last copy goes; null while a generation holds it.
  std::shared_ptr<void> try_begin();
  // With the slot held: loads the model and adapter (or reuses the loaded ones), renders and
  // encodes the prompt, checks it against the model's context. ApiError 400 for the request's
  // problems (no chat template, prompt too long, not enough memory), Error for unreadable files.
  std::shared_ptr<const PreparedGeneration> prepare(const PlaygroundRequest& r);
  // Generates, emitting start, token and done (a column's reason: eos, max_new_tokens or
  // context) as it goes; returns the "end" event for the caller to send once it has given the
  // slot back: {reason: finished / stopped / disconnected / job / shutdown / error, message, tokens}.
  nlohmann::json run(const PreparedGeneration& g, const PlaygroundEmit& emit, const PlaygroundInterrupt& interrupt);

  // Ends the running generation with `reason` ("stopped", "job", "shutdown"); false when none runs.
  bool cancel(const std::string& reason);
  // cancel("job") and drop the loaded model: a job is about to start and needs the cores and memory.
  void make_room_for_job();
  // Drops the loaded model; ApiError 409 while a generation runs.
  void unload();
  // {loaded: {model, lora, bytes, weights, loaded_at} | null, generating, last: {reason, tokens} | null,
  //  limits: {max_new_tokens, max_prompt_chars, max_messages}, templates: [built-in names]}
  nlohmann::json status() const;

 private:
  struct Shared;  // the slot's state, shared with the slot's deleter
  std::shared_ptr<const PlaygroundModel> load_model_cached(const PlaygroundRequest& r);
  std::shared_ptr<const PlaygroundAdapter> load_adapter_cached(const PlaygroundRequest& r, const PlaygroundModel& m);
  std::string stop_reason() const;

  int token_delay_ms_;
  std::shared_ptr<Shared> sh_;
};

}  // namespace tpro
