// The Playground's API (server/playground.h): tokens streamed as server-sent events, side by
// side columns that are exactly what Generator::generate gives for the base and the adapter
// alone, chat prompts through a built-in or the model's own template (its end-of-turn token a
// stop id), the context and size bounds, one generation at a time, Stop, a client that goes
// away, jobs that come first, the model cache, and every bad input refused with its message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>

#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "kernels/backend.h"
#include "model/generate.h"
#include "server/playground.h"
#include "server/server_test_util.h"
#include "tokenizer/tokenizer.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

// A PEFT adapter `name` in --loras whose B is not zero, so it changes the output.
LoraWeights write_adapter(const TestServer& s, const std::string& name, uint64_t seed) {
  const LlamaConfig cfg = load_model_config(s.dir() / "models" / "tiny");
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets = parse_targets("all");
  Rng rng(seed);
  LoraWeights lw = make_lora(cfg, lc, rng);
  for (auto& p : lw.params) p = float(rng.uniform(-0.5, 0.5));
  save_adapter(s.dir() / "loras" / name, lw, "tiny");
  return lw;
}

struct Stream {
  int status = 0;
  json error;                    // the JSON body of a refusal
  std::vector<SseEvent> events;  // of a stream
  int chunks_with_tokens = 0;    // reads that brought at least one token event
  std::vector<SseEvent> of(const std::string& type) const {
    std::vector<SseEvent> out;
    for (const auto& e : events)
      if (e.type == type) out.push_back(e);
    return out;
  }
  std::vector<int32_t> ids(const std::string& column) const {
    std::vector<int32_t> out;
    for (const auto& e : of("token"))
      if (e.data["column"] == column) out.push_back(e.data["id"].get<int32_t>());
    return out;
  }
  std::string text(const std::string& column) const {
    std::string out;
    for (const auto& e : of("token"))
      if (e.data["column"] == column) out += e.data["text"].get<std::string>();
    return out;
  }
};

// POSTs to /api/playground/generate and reads the stream; on_event may return false to hang up.
Stream generate(const TestServer& s, const json& body, const std::function<bool(const SseEvent&)>& on_event = nullptr) {
  Stream out;
  std::string buf, raw;
  httplib::Request req;
  req.method = "POST";
  req.path = "/api/playground/generate";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body.dump();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    raw.append(data, n);
    buf.append(data, n);
    bool tokens = false;
    for (size_t end; (end = buf.find("\n\n")) != std::string::npos;) {
      const std::string f = buf.substr(0, end);
      buf.erase(0, end + 2);
      SseEvent e;
      std::istringstream lines(f);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("event: ", 0) == 0) e.type = line.substr(7);
        if (line.rfind("data: ", 0) == 0) e.data = json::parse(line.substr(6));
      }
      if (e.type.empty()) continue;
      tokens = tokens || e.type == "token";
      out.events.push_back(e);
      if (on_event && !on_event(e)) return false;
    }
    out.chunks_with_tokens += tokens;
    return true;
  };
  auto c = s.client();
  const httplib::Result r = c.send(req);
  if (r) out.status = r->status;
  if (r && r->status != 200) out.error = json::parse(raw, nullptr, false);
  return out;
}

std::string error_message(const Stream& st) { return st.error.is_object() ? st.error["error"].value("message", "") : ""; }
std::string error_field(const Stream& st) { return st.error.is_object() ? st.error["error"].value("field", "") : ""; }

json completion(const std::string& prompt) {
  return {{"model", "tiny"}, {"mode", "completion"}, {"prompt", prompt}, {"max_new_tokens", 12},
          {"temperature", 0.9}, {"top_p", 0.9}, {"seed", 5}};
}

// Polls /api/playground until no generation runs (bounded: 60 s).
json wait_idle(const TestServer& s) {
  json st;
  for (int i = 0; i < 600; ++i) {
    st = s.get("/api/playground").body;
    if (st.value("generating", true) == false) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "the generation did not end: " << st.dump();
  return st;
}

// Makes generation slow enough to watch and stop (a pause after each round of tokens) for the
// servers built while it lives.
struct SlowTokens {
  SlowTokens() { setenv("TPRO_PLAYGROUND_DELAY_MS", "20", 1); }
  ~SlowTokens() { unsetenv("TPRO_PLAYGROUND_DELAY_MS"); }
};

}  // namespace

TEST(Playground, SideBySideStreamsBaseAndAdapterAsGenerateWouldAlone) {
  TestServer s("playground_side");
  const LoraWeights lw = write_adapter(s, "peft", 3);
  json b = completion("The lighthouse keeper");
  b["lora"] = "peft";
  b["side_by_side"] = true;
  const Stream st = generate(s, b);
  ASSERT_EQ(st.status, 200) << st.error.dump();
  ASSERT_FALSE(st.events.empty());
  const json start = st.events.front().data;
  EXPECT_EQ(st.events.front().type, "start");
  EXPECT_EQ(start["columns"], json::array({"base", "adapter"}));
  EXPECT_EQ(start["seed"], 5);
  EXPECT_EQ(start["lora"], "peft");
  EXPECT_EQ(st.events.back().type, "end");
  EXPECT_EQ(st.events.back().data["reason"], "finished");
  // Tokens came as they were made: many reads, not one body at the end.
  EXPECT_GT(st.chunks_with_tokens, 1);

  // Each column is what the Generator gives alone with the same seed.
  const Model m = load_model(s.dir() / "models" / "tiny");
  const Tokenizer tok = Tokenizer::load(s.dir() / "models" / "tiny");
  const std::vector<int32_t> prompt = tok.encode("The lighthouse keeper", true);
  EXPECT_EQ(start["prompt_tokens"], prompt.size());
  SamplingParams sp;
  sp.max_new_tokens = 12;
  sp.temperature = 0.9;
  sp.top_p = 0.9;
  sp.seed = 5;
  sp.stop_ids = {tok.eos_id()};
  const std::unique_ptr<Backend> be = make_backend("cpu");
  const int64_t window = int64_t(prompt.size()) + 12;
  std::vector<int32_t> base = Generator(*be, m, nullptr, window).generate(prompt, sp);
  std::vector<int32_t> adapted = Generator(*be, m, &lw, window).generate(prompt, sp);
  for (auto* v : {&base, &adapted})
    if (!v->empty() && v->back() == tok.eos_id()) v->pop_back();  // the stop token is not shown
  EXPECT_EQ(st.ids("base"), base);
  EXPECT_EQ(st.ids("adapter"), adapted);
  EXPECT_NE(base, adapted);  // the adapter changes the text
  EXPECT_EQ(st.text("base"), tok.decode(base));
  ASSERT_EQ(st.of("done").size(), 2u);
  for (const auto& d : st.of("done")) EXPECT_EQ(d.data["tokens"], d.data["column"] == "base" ? base.size() : adapted.size());

  // The model stays loaded for the next request, with the adapter.
  const json status = s.get("/api/playground").body;
  EXPECT_EQ(status["loaded"]["model"], "tiny");
  EXPECT_EQ(status["loaded"]["lora"], "peft");
  EXPECT_GT(status["loaded"]["bytes"].get<int64_t>(), 0);
  EXPECT_EQ(status["generating"], false);
  EXPECT_EQ(status["last"]["reason"], "finished");
}

TEST(Playground, ARetrainedAdapterIsReadAgainAndUnloadFreesTheModel) {
  TestServer s("playground_cache");
  write_adapter(s, "peft", 3);
  json b = completion("Once");
  b["lora"] = "peft";
  b["temperature"] = 0;
  const Stream first = generate(s, b);
  ASSERT_EQ(first.status, 200) << first.error.dump();
  fs::remove_all(s.dir() / "loras" / "peft");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a distinct modification time
  write_adapter(s, "peft", 4);
  const Stream second = generate(s, b);
  ASSERT_EQ(second.status, 200) << second.error.dump();
  EXPECT_NE(first.ids("adapter"), second.ids("adapter"));
  const Reply r = s.post("/api/playground/unload", json::object());
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_TRUE(r.body["loaded"].is_null());
}

TEST(Playground, ChatUsesABuiltInTemplateWithTheSystemPrompt) {
  TestServer s("playground_chat");
  json b = {{"model", "tiny"}, {"mode", "chat"}, {"chat_template", "chatml"}, {"system", "Be brief."},
            {"messages", {{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Hello"}},
                          {{"role", "user"}, {"content", "Light the lamp?"}}}},
            {"max_new_tokens", 4}, {"temperature", 0}};
  const Stream st = generate(s, b);
  ASSERT_EQ(st.status, 200) << st.error.dump();
  EXPECT_EQ(st.events.front().data["prompt"],
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello"
            "<|im_end|>\n<|im_start|>user\nLight the lamp?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(st.events.front().data["columns"], json::array({"base"}));
  EXPECT_EQ(st.ids("base").size(), 4u);
  // The tiny model has no template of its own: asking for it says so and names the built-ins.
  b.erase("chat_template");
  const Stream none = generate(s, b);
  EXPECT_EQ(none.status, 400);
  EXPECT_EQ(error_field(none), "chat_template");
  EXPECT_THAT(error_message(none), HasSubstr("the model 'tiny' has no chat template (hint: choose a built-in one (chatml"));
}

TEST(Playground, TheModelsOwnTemplateAndItsEndOfTurnTokenStopGeneration) {
  TestServer s("playground_own_template");
  const fs::path chat = s.dir() / "models" / "tiny-chat";
  fs::copy(s.dir() / "models" / "tiny", chat, fs::copy_options::recursive);
  // Each turn ends in <|pad|>, a special token of the byte-level tokenizer.
  write_file_atomic(chat / "chat_template.jinja",
                    "{% for m in messages %}[{{ m.role }}] {{ m.content }}<|pad|>{% endfor %}"
                    "{% if add_generation_prompt %}[assistant] {% endif %}");
  const Stream st = generate(s, {{"model", "tiny-chat"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                 {"max_new_tokens", 3}, {"temperature", 0}});
  ASSERT_EQ(st.status, 200) << st.error.dump();
  EXPECT_EQ(st.events.front().data["prompt"], "[user] Hi<|pad|>[assistant] ");
  EXPECT_EQ(st.events.front().data["stop_ids"], json::array({kByteLevelPadId, kByteLevelEosId}));
}

TEST(Playground, ThePromptMustLeaveRoomInTheContextAndNewTokensAreCappedToIt) {
  TestServer s("playground_context");  // the tiny model's context is 256 tokens
  Stream st = generate(s, completion(std::string(300, 'a')));
  EXPECT_EQ(st.status, 400);
  EXPECT_EQ(error_field(st), "prompt");
  EXPECT_THAT(error_message(st),
              HasSubstr("prompt: the prompt is 301 tokens and the model's context is 256 tokens (max_position_embeddings): "
                        "no room for new tokens"));
  json b = completion(std::string(250, 'a'));
  b["max_new_tokens"] = 100;
  st = generate(s, b);
  ASSERT_EQ(st.status, 200) << st.error.dump();
  EXPECT_EQ(st.events.front().data["max_new_tokens"], 5);
  EXPECT_THAT(st.events.front().data["notes"][0].get<std::string>(),
              HasSubstr("max_new_tokens lowered from 100 to 5: the prompt (251 tokens)"));
  EXPECT_LE(st.ids("base").size(), 5u);
  b["max_new_tokens"] = kPlaygroundMaxNewTokens + 1;
  st = generate(s, b);
  EXPECT_EQ(st.status, 400);
  EXPECT_THAT(error_message(st), HasSubstr("max_new_tokens must be in [1, 4096], got 4097"));
}

TEST(Playground, BadInputIsRefusedWithTheFieldAndWhy) {
  TestServer s("playground_bad");
  const fs::path outside = s.dir() / "outside";
  write_adapter(s, "peft", 3);
  fs::copy(s.dir() / "loras" / "peft", outside, fs::copy_options::recursive);
  fs::create_directory_symlink(outside, s.dir() / "loras" / "link-out");
  struct Case {
    json body;
    std::string field, message;
  };
  const json ok = completion("x");
  auto with = [&](const char* k, json v) {
    json b = ok;
    b[k] = std::move(v);
    return b;
  };
  json no_model = ok;
  no_model.erase("model");
  const std::vector<Case> cases = {
      {no_model, "model", "model is required: choose a base model in the models folder"},
      {with("model", "nope"), "model", "does not exist"},
      {with("model", "../data"), "model", "outside"},
      {with("lora", "../models/tiny"), "lora", "lora must be the name of an adapter folder in the loras folder"},
      {with("lora", "link-out"), "lora", "outside"},
      {with("lora", "ghost"), "lora", "does not exist"},
      {with("temperature", 9), "temperature", "temperature must be in [0, 5], got 9"},
      {with("temperature", "warm"), "temperature", "temperature expects a number, got \"warm\""},
      {with("top_p", 1.5), "top_p", "top_p must be in [0, 1], got 1.5"},
      {with("seed", -1), "seed", "seed must be in [0, 9007199254740991], got -1"},
      {with("mode", "poem"), "mode", "mode must be chat or completion, got 'poem'"},
      {with("prompt", ""), "prompt", "prompt: write the text to continue"},
      {with("prompt", std::string(kPlaygroundMaxPromptChars + 1, 'a')), "prompt", "the prompt is over 1048576 characters"},
      {with("messages", json::array()), "messages", "messages is for chat mode; completion mode takes prompt"},
      {with("side_by_side", true), "side_by_side", "side_by_side compares the base with an adapter: choose an adapter"},
      {with("side_by_side", "yes"), "side_by_side", "side_by_side expects true or false"},
      {with("colour", 1), "colour", "unknown key 'colour'"},
      {{{"model", "tiny"}, {"prompt", "x"}}, "prompt", "prompt is for completion mode; chat mode takes messages"},
      {{{"model", "tiny"}, {"messages", json::array()}}, "messages", "messages: write a message first"},
      {{{"model", "tiny"}, {"messages", {{{"role", "user"}}}}}, "messages", "messages[0] must be {\"role\": ..., \"content\""},
      {{{"model", "tiny"}, {"messages", {{{"role", "robot"}, {"content", "x"}}}}}, "messages",
       "messages[0]: role must be system, user or assistant, got 'robot'"},
      {{{"model", "tiny"}, {"messages", {{{"role", "assistant"}, {"content", "x"}}}}}, "messages",
       "the last message must be the user's (the model answers it), got assistant"},
      {{{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"chat_template", "../t.jinja"}},
       "chat_template", "chat_template: '../t.jinja' is not a built-in template (hint: chatml, alpaca"},
  };
  for (const Case& c : cases) {
    const Stream st = generate(s, c.body);
    EXPECT_EQ(st.status, 400) << c.body.dump().substr(0, 200);
    EXPECT_EQ(error_field(st), c.field) << error_message(st);
    EXPECT_THAT(error_message(st), HasSubstr(c.message));
  }
  const Reply bad = [&] {
    auto r = s.client().Post("/api/playground/generate", "{\"model\": ", "application/json");
    Reply out;
    out.status = r->status;
    out.body = json::parse(r->body);
    return out;
  }();
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body["error"]["message"].get<std::string>(), HasSubstr("invalid JSON"));
  EXPECT_EQ(s.post("/api/playground/stop", json::object()).status, 409);
  EXPECT_THAT(s.post("/api/playground/stop", json::object()).body["error"]["message"].get<std::string>(),
              HasSubstr("no generation is running, nothing to stop"));
}

TEST(Playground, OneAtATimeAndStopEndsIt) {
  SlowTokens slow;
  TestServer s("playground_stop");
  json b = completion("The keeper");
  b["max_new_tokens"] = 200;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  Stream first;
  std::thread t([&] {
    first = generate(s, b, [&](const SseEvent& e) {
      if (e.type == "token") {
        std::lock_guard<std::mutex> lock(mu);
        started = true;
        cv.notify_all();
      }
      return true;
    });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return started; }));
  }
  const Stream second = generate(s, b);
  EXPECT_EQ(second.status, 429);
  EXPECT_THAT(error_message(second), HasSubstr("a generation is already running: the playground runs one at a time"));
  EXPECT_EQ(s.get("/api/playground").body["generating"], true);
  EXPECT_EQ(s.post("/api/playground/unload", json::object()).status, 409);
  EXPECT_EQ(s.post("/api/playground/stop", json::object()).status, 200);
  t.join();
  ASSERT_EQ(first.events.back().type, "end");
  EXPECT_EQ(first.events.back().data["reason"], "stopped");
  EXPECT_LT(first.ids("base").size(), 200u);
  EXPECT_EQ(wait_idle(s)["last"]["reason"], "stopped");
}

TEST(Playground, AClientThatGoesAwayEndsTheGeneration) {
  SlowTokens slow;
  TestServer s("playground_gone");
  json b = completion("The keeper");
  b["max_new_tokens"] = 200;
  int seen = 0;
  const Stream st = generate(s, b, [&](const SseEvent& e) { return !(e.type == "token" && ++seen == 3); });
  EXPECT_EQ(seen, 3);
  const json idle = wait_idle(s);
  EXPECT_EQ(idle["last"]["reason"], "disconnected");
  EXPECT_LT(idle["last"]["tokens"]["base"].get<int64_t>(), 200);
  EXPECT_EQ(generate(s, completion("again")).status, 200);  // the slot was given back
}

TEST(Playground, AJobComesFirst) {
  SlowTokens slow;
  TestServer s("playground_job");
  json b = completion("The keeper");
  b["max_new_tokens"] = 200;
  // A generation running when a job starts ends, and the model is unloaded for the job.
  bool posted = false;
  const Stream st = generate(s, b, [&](const SseEvent& e) {
    if (e.type == "token" && !posted) {
      posted = true;
      EXPECT_EQ(s.post("/api/train", endless_run("job-run")).status, 202);
    }
    return true;
  });
  ASSERT_EQ(st.events.back().type, "end");
  EXPECT_EQ(st.events.back().data["reason"], "job");
  EXPECT_THAT(st.events.back().data["message"].get<std::string>(), HasSubstr("a job started"));
  EXPECT_TRUE(s.get("/api/playground").body["loaded"].is_null());
  // While the job runs, generating is refused.
  const Stream refused = generate(s, b);
  EXPECT_EQ(refused.status, 409);
  EXPECT_THAT(error_message(refused), HasSubstr("a train job is running: the playground waits until it ends"));
  EXPECT_EQ(s.get("/api/playground").body["job_running"], true);
  EXPECT_EQ(s.post("/api/stop", json::object()).status, 200);
  wait_for_state(s, is_done);
}
