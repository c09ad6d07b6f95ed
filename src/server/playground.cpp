// The Playground's model cache, prompt preparation and token loop; see playground.h. Columns
// take turns one token at a time, each with its own Generator (KV cache) and its own Rng seeded
// alike, so a column's tokens are exactly what Generator::generate gives for it alone.
#include "server/playground.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/memory_info.h"
#include "data/builtin_templates.h"
#include "formats/load.h"
#include "io/safetensors.h"
#include "jinja/chat_template.h"
#include "kernels/backend.h"
#include "model/base_weights.h"
#include "server/api_error.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "train/memory_plan.h"
#include "train/perplexity.h"

namespace tpro {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

struct PlaygroundModel {
  fs::path path;
  std::string name;
  Model m;
  Tokenizer tok;
  std::unique_ptr<Backend> be;
  size_t bytes = 0;  // the weights as held (base_memory)
  std::string loaded_at;
};

struct PlaygroundAdapter {
  fs::path path, model_path;
  std::string name, stamp;
  LoraWeights lw;
};

struct Playground::Shared {
  mutable std::mutex mu;
  bool generating = false;
  std::string cancel_reason;  // set by cancel() while a generation holds the slot
  std::shared_ptr<const PlaygroundModel> model;
  std::shared_ptr<const PlaygroundAdapter> adapter;
  json last;  // the last generation's end: {reason, tokens: {column: n}, prompt_tokens}
};

namespace {

constexpr size_t kMaxPromptEcho = 20000;  // chars of the rendered prompt sent back in "start"
constexpr const char* kTurnProbe = "tpro-end-of-turn-probe";

// Size and modification time of the adapter's files: a retrained adapter reads differently.
std::string adapter_stamp(const fs::path& p) {
  std::string s;
  std::error_code ec;
  const std::vector<fs::path> files = fs::is_directory(p, ec)
      ? std::vector<fs::path>{p / "adapter_config.json", p / "adapter_model.safetensors", p / "adapter_model.bin"}
      : std::vector<fs::path>{p};
  for (const fs::path& f : files) {
    const auto size = fs::file_size(f, ec);
    if (ec) continue;
    const auto t = fs::last_write_time(f, ec).time_since_epoch().count();
    s += cat(f.filename().string(), ":", size, ":", t, ";");
  }
  return s;
}

// Bytes of weights the model's files hold (what loading maps or reads).
size_t weight_file_bytes(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return size_t(fs::file_size(p, ec));
  size_t total = 0;
  for (const fs::path& f : safetensors_shards(p)) total += size_t(fs::file_size(f, ec));
  return total;
}

std::vector<std::string> builtin_names() {
  std::vector<std::string> out;
  const std::string all = builtin_chat_template_names();
  for (size_t at = 0; at < all.size();) {
    size_t end = all.find(", ", at);
    if (end == std::string::npos) end = all.size();
    out.push_back(all.substr(at, end - at));
    at = end + 2;
  }
  return out;
}

ordered_json messages_json(const std::vector<ChatMessage>& msgs) {
  ordered_json out = ordered_json::array();
  for (const ChatMessage& m : msgs) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

// The chat rendered for generation: the template's text up to the assistant's turn. A template
// that refuses a system role gets the system prompt folded into the first user turn.
std::string render_chat(const ChatTemplate& ct, const Tokenizer& tok, const std::vector<ChatMessage>& msgs) {
  const ordered_json extra = {{"bos_token", tok.bos_token()}, {"eos_token", tok.eos_token()}};
  try {
    return ct.apply(messages_json(msgs), true, extra);
  } catch (const Error& e) {
    const auto folded = is_system_role_refusal(e.what()) ? merge_system_into_user(msgs) : std::nullopt;
    if (!folded) bad_request("messages", cat("messages: the chat template failed: ", e.what()));
    try {
      return ct.apply(messages_json(*folded), true, extra);
    } catch (const Error& e2) {
      bad_request("messages", cat("messages: the chat template failed: ", e2.what()));
    }
  }
}

// The special token the template writes right after an assistant's message (<|im_end|>,
// <|eot_id|>, <end_of_turn>), found by rendering one; -1 when there is none.
int32_t end_of_turn_id(const ChatTemplate& ct, const Tokenizer& tok, std::vector<ChatMessage> msgs) {
  msgs.push_back({"assistant", kTurnProbe});
  try {
    const std::string text =
        ct.apply(messages_json(msgs), false, ordered_json{{"bos_token", tok.bos_token()}, {"eos_token", tok.eos_token()}});
    const size_t at = text.rfind(kTurnProbe);
    if (at == std::string::npos) return -1;
    const std::vector<int32_t> ids = tok.encode(text.substr(at + std::string(kTurnProbe).size()), false);
    return !ids.empty() && tok.is_special(ids[0]) ? ids[0] : -1;
  } catch (const Error&) {
    return -1;  // a template that refuses this conversation: eos alone ends a turn
  }
}

struct Column {
  std::string name;
  std::unique_ptr<Generator> g;
  Rng rng;
  std::vector<int32_t> history;
  StreamDecoder dec;
  std::vector<float> logits;
  const float* next = nullptr;  // the logits after the last fed token
  int64_t n = 0;
  std::string reason;  // set when the column is done
};

}  // namespace

Playground::Playground(int token_delay_ms)
    : token_delay_ms_(std::clamp(token_delay_ms, 0, 1000)), sh_(std::make_shared<Shared>()) {}

std::shared_ptr<void> Playground::try_begin() {
  std::lock_guard<std::mutex> lock(sh_->mu);
  if (sh_->generating) return nullptr;
  sh_->generating = true;
  sh_->cancel_reason.clear();
  auto sh = sh_;
  return std::shared_ptr<void>(sh.get(), [sh](void*) {
    std::lock_guard<std::mutex> lock(sh->mu);
    sh->generating = false;
  });
}

bool Playground::cancel(const std::string& reason) {
  std::lock_guard<std::mutex> lock(sh_->mu);
  if (!sh_->generating) return false;
  if (sh_->cancel_reason.empty()) sh_->cancel_reason = reason;
  return true;
}

void Playground::make_room_for_job() {
  cancel("job");
  std::lock_guard<std::mutex> lock(sh_->mu);
  sh_->adapter.reset();  // a running generation keeps its own references until it ends
  sh_->model.reset();
}

void Playground::unload() {
  std::lock_guard<std::mutex> lock(sh_->mu);
  if (sh_->generating)
    conflict("a generation is running: the model stays loaded until it ends (hint: press Stop first)");
  sh_->adapter.reset();
  sh_->model.reset();
}

std::string Playground::stop_reason() const {
  std::lock_guard<std::mutex> lock(sh_->mu);
  return sh_->cancel_reason;
}

json Playground::status() const {
  std::lock_guard<std::mutex> lock(sh_->mu);
  json loaded = nullptr;
  if (sh_->model) {
    const PlaygroundModel& m = *sh_->model;
    const bool lora = sh_->adapter && sh_->adapter->model_path == m.path;
    loaded = {{"model", m.name}, {"lora", lora ? json(sh_->adapter->name) : json(nullptr)},
              {"bytes", m.bytes}, {"weights", human_bytes(m.bytes)}, {"loaded_at", m.loaded_at}};
  }
  return {{"loaded", loaded},
          {"generating", sh_->generating},
          {"last", sh_->last},
          {"limits", {{"max_new_tokens", kPlaygroundMaxNewTokens}, {"max_prompt_chars", kPlaygroundMaxPromptChars},
                      {"max_messages", kPlaygroundMaxMessages}}},
          {"templates", builtin_names()}};
}

std::shared_ptr<const PlaygroundModel> Playground::load_model_cached(const PlaygroundRequest& r) {
  {
    std::lock_guard<std::mutex> lock(sh_->mu);
    if (sh_->model && sh_->model->path == r.model) return sh_->model;
    sh_->adapter.reset();  // one model at a time: the old one goes before the new one loads
    sh_->model.reset();
  }
  const size_t file_bytes = weight_file_bytes(r.model);
  const std::optional<size_t> avail = mem_available();
  if (avail && file_bytes > *avail)
    bad_request("model", cat("model: '", r.model_name, "' holds ", human_bytes(file_bytes), " of weights and ",
                             human_bytes(*avail), " of memory is available: it would not fit (hint: a smaller or ",
                             "quantized model, e.g. a Q4_K .gguf, or close other programs)"));
  auto pm = std::make_shared<PlaygroundModel>();
  pm->path = r.model;
  pm->name = r.model_name;
  pm->m = load_model(r.model);
  pm->tok = Tokenizer::load(r.model);
  pm->be = make_backend("cpu");
  pm->bytes = base_memory(pm->m).total();
  pm->loaded_at = now_iso8601();
  std::lock_guard<std::mutex> lock(sh_->mu);
  sh_->model = pm;
  return pm;
}

std::shared_ptr<const PlaygroundAdapter> Playground::load_adapter_cached(const PlaygroundRequest& r,
                                                                         const PlaygroundModel& m) {
  if (r.lora.empty()) return nullptr;
  const std::string stamp = adapter_stamp(r.lora);
  {
    std::lock_guard<std::mutex> lock(sh_->mu);
    const auto& a = sh_->adapter;
    if (a && a->path == r.lora && a->model_path == m.path && a->stamp == stamp) return a;
    sh_->adapter.reset();
  }
  auto pa = std::make_shared<PlaygroundAdapter>();
  pa->path = r.lora;
  pa->model_path = m.path;
  pa->name = r.lora_name;
  pa->stamp = stamp;
  try {
    pa->lw = load_lora(r.lora, m.m);
  } catch (const Error& e) {
    bad_request("lora", cat("lora: '", r.lora_name, "' does not fit '", m.name, "': ", e.what()));
  }
  std::lock_guard<std::mutex> lock(sh_->mu);
  sh_->adapter = pa;
  return pa;
}

std::shared_ptr<const PreparedGeneration> Playground::prepare(const PlaygroundRequest& r) {
  auto g = std::make_shared<PreparedGeneration>();
  g->model = load_model_cached(r);
  g->adapter = load_adapter_cached(r, *g->model);
  const PlaygroundModel& pm = *g->model;
  const Tokenizer& tok = pm.tok;
  g->sp = r.sp;
  if (!r.seed_given) g->sp.seed = std::random_device()() & 0xffffffffu;
  const char* field = r.chat ? "messages" : "prompt";
  if (r.chat) {
    const std::string* builtin = r.chat_template.empty() ? nullptr : builtin_chat_template(r.chat_template);
    const std::string source = builtin ? *builtin : tok.chat_template();
    if (source.empty())
      bad_request("chat_template", cat("chat_template: the model '", pm.name, "' has no chat template (hint: choose ",
                                       "a built-in one (", builtin_chat_template_names(), "), or use completion mode)"));
    std::optional<ChatTemplate> ct;
    try {
      ct.emplace(source, builtin ? "the built-in " + r.chat_template + " chat template" : pm.name + "'s chat template");
    } catch (const Error& e) {
      bad_request("chat_template", cat("chat_template: ", e.what()));
    }
    g->prompt_text = render_chat(*ct, tok, r.messages);
    g->prompt = tok.encode(g->prompt_text, false);
    if (tok.add_bos() && tok.bos_id() >= 0 && (g->prompt.empty() || g->prompt[0] != tok.bos_id()) &&
        g->prompt_text.rfind(tok.bos_token(), 0) != 0)
      g->prompt.insert(g->prompt.begin(), tok.bos_id());  // as `tpro generate --chat`
    if (const int32_t eot = end_of_turn_id(*ct, tok, r.messages); eot >= 0) g->sp.stop_ids.push_back(eot);
  } else {
    g->prompt_text = r.prompt;
    g->prompt = tok.encode(r.prompt, true);
  }
  if (tok.eos_id() >= 0) g->sp.stop_ids.push_back(tok.eos_id());
  if (g->prompt.empty()) bad_request(field, cat(field, ": the prompt encodes to no tokens (hint: write some text)"));
  const int64_t limit = pm.m.cfg.max_position, n_prompt = int64_t(g->prompt.size());
  if (n_prompt >= limit)
    bad_request(field, cat(field, ": the prompt is ", n_prompt, " tokens and the model's context is ", limit,
                           " tokens (max_position_embeddings): no room for new tokens (hint: shorten it",
                           r.chat ? ", or clear the chat)" : ")"));
  if (n_prompt + g->sp.max_new_tokens > limit) {
    g->notes.push_back(cat("max_new_tokens lowered from ", g->sp.max_new_tokens, " to ", limit - n_prompt,
                           ": the prompt (", n_prompt, " tokens) and the new tokens share the model's context of ",
                           limit, " tokens"));
    g->sp.max_new_tokens = limit - n_prompt;
  }
  g->window = n_prompt + g->sp.max_new_tokens;
  if (r.side_by_side) g->columns = {"base", "adapter"};
  else g->columns = {g->adapter ? "adapter" : "base"};
  // Each column holds a KV cache of the window (keys and values, f32, every layer).
  const LlamaConfig& c = pm.m.cfg;
  const double kv = double(g->columns.size()) * 2.0 * double(c.n_layer) * double(g->window) * double(c.kv_dim()) * 4.0;
  const std::optional<size_t> avail = mem_available();
  if (avail && kv > double(*avail))
    bad_request("max_new_tokens", cat("max_new_tokens: the KV cache of ", g->window, " tokens needs ",
                                      human_bytes(size_t(kv)), " and ", human_bytes(*avail),
                                      " of memory is available (hint: fewer new tokens, a shorter prompt",
                                      g->columns.size() > 1 ? ", or side by side off)" : ")"));
  return g;
}

json Playground::run(const PreparedGeneration& g, const PlaygroundEmit& emit,
                            const PlaygroundInterrupt& interrupt) {
  const PlaygroundModel& pm = *g.model;
  const int64_t V = pm.m.cfg.vocab_size;
  std::string reason;
  auto check = [&]() -> bool {  // true when the generation must end now
    if (reason.empty()) reason = stop_reason();
    if (reason.empty() && interrupt) reason = interrupt();
    return !reason.empty();
  };
  std::vector<Column> cols;
  cols.reserve(g.columns.size());
  try {
    std::string echo = g.prompt_text.substr(0, kMaxPromptEcho);
    json start = {{"columns", g.columns}, {"prompt_tokens", g.prompt.size()}, {"max_new_tokens", g.sp.max_new_tokens},
                  {"seed", g.sp.seed}, {"stop_ids", g.sp.stop_ids}, {"window", g.window}, {"model", pm.name},
                  {"lora", g.adapter ? json(g.adapter->name) : json(nullptr)}, {"notes", g.notes}, {"prompt", echo}};
    if (!emit("start", start)) reason = "disconnected";
    for (const std::string& name : g.columns) {
      const LoraWeights* lw = name == "adapter" ? &g.adapter->lw : nullptr;
      cols.push_back(Column{name, std::make_unique<Generator>(*pm.be, pm.m, lw, g.window), Rng(g.sp.seed), g.prompt,
                            StreamDecoder(pm.tok, g.prompt), std::vector<float>(size_t(V)), nullptr, 0, ""});
    }
    for (Column& col : cols)  // the prompt, a chunk at a time, so Stop is heard during a long one
      for (size_t at = 0; at < g.prompt.size() && !check(); at += size_t(kPlaygroundPrefillChunk)) {
        const int64_t n = std::min<int64_t>(kPlaygroundPrefillChunk, int64_t(g.prompt.size() - at));
        col.next = col.g->feed(g.prompt.data() + at, n);
      }
    bool left = !check();
    while (left) {
      left = false;
      for (Column& col : cols) {
        if (!col.reason.empty()) continue;
        std::copy(col.next, col.next + V, col.logits.begin());
        const int32_t t = sample_token(col.logits.data(), V, g.sp, col.history, col.rng);
        col.history.push_back(t);
        const bool stop = std::find(g.sp.stop_ids.begin(), g.sp.stop_ids.end(), t) != g.sp.stop_ids.end();
        if (stop) {
          col.reason = "eos";
        } else {
          ++col.n;
          if (!emit("token", {{"column", col.name}, {"id", t}, {"text", col.dec.push(t)}, {"n", col.n}})) {
            reason = "disconnected";
            break;
          }
          if (col.n >= g.sp.max_new_tokens) col.reason = "max_new_tokens";
          else if (col.g->position() >= g.window) col.reason = "context";
          else col.next = col.g->feed(&t, 1);
        }
        if (!col.reason.empty() && !emit("done", {{"column", col.name}, {"tokens", col.n}, {"reason", col.reason}})) {
          reason = "disconnected";
          break;
        }
        left = left || col.reason.empty();
      }
      if (check()) break;
      if (left && token_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(token_delay_ms_));
    }
    if (reason.empty()) reason = "finished";
  } catch (const std::exception& e) {
    reason = "error";
    emit("error", {{"message", e.what()}, {"type", "server_error"}});
  }
  static const std::map<std::string, std::string> kText = {
      {"finished", "finished"}, {"stopped", "stopped"}, {"disconnected", "the page went away"},
      {"job", "stopped: a job started; it needs the cores and the memory, so the model was unloaded"},
      {"shutdown", "stopped: the server is shutting down"}, {"error", "failed"}};
  json tokens = json::object();
  for (const Column& col : cols) tokens[col.name] = col.n;
  const auto text = kText.find(reason);
  json end = {{"reason", reason}, {"message", text == kText.end() ? reason : text->second}, {"tokens", tokens}};
  std::lock_guard<std::mutex> lock(sh_->mu);
  sh_->last = {{"reason", reason}, {"tokens", tokens}, {"prompt_tokens", g.prompt.size()}};
  if (reason == "job" || reason == "shutdown") {
    sh_->adapter.reset();
    sh_->model.reset();
  }
  return end;
}

}  // namespace tpro
