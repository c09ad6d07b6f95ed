// The server's perplexity job takes its adapter (`lora`) as a PEFT folder or a GGUF LoRA file
// in --loras, as `tpro perplexity --lora` does: both forms of one adapter give the same
// perplexity, which is not the base model's; any other file is a 400 naming both forms.
#include <gtest/gtest.h>

#include <cmath>

#include "formats/gguf_adapter.h"
#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "server/server_test_util.h"

using namespace tpro;
using namespace tpro::test;

namespace {

json perplexity_body(const std::string& lora) {
  json b = {{"model", "tiny"}, {"text_file", "short.txt"}, {"stride", 16}, {"max_length", 32}};
  if (!lora.empty()) b["lora"] = lora;
  return b;
}

// The finished job's perplexity, or NaN (with a failure) when it did not finish.
double perplexity_of(const TestServer& s, const std::string& lora) {
  const Reply r = s.post("/api/perplexity", perplexity_body(lora));
  EXPECT_EQ(r.status, 202) << r.body.dump();
  const json done = wait_for_state(s, is_done);
  EXPECT_EQ(done["state"], "finished") << done.dump();
  if (done["state"] != "finished") return std::nan("");
  return done["result"]["perplexity"].get<double>();
}

}  // namespace

TEST(Server, PerplexityJobTakesAGgufAdapterAsWellAsAPeftFolder) {
  TestServer s("pplgguf");
  const fs::path loras = s.dir() / "loras";
  const LlamaConfig cfg = load_model_config(s.dir() / "models" / "tiny");
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets = parse_targets("all");
  Rng rng(7);
  LoraWeights lw = make_lora(cfg, lc, rng);
  for (auto& p : lw.params) p = float(rng.uniform(-0.3, 0.3));  // B non-zero: the adapter acts
  save_adapter(loras / "peft", lw, "tiny");
  save_adapter_gguf(loras / "adapter.gguf", lw, cfg, "tiny");

  const double base = perplexity_of(s, ""), peft = perplexity_of(s, "peft"), gguf = perplexity_of(s, "adapter.gguf");
  EXPECT_DOUBLE_EQ(gguf, peft);  // the same f32 weights, the Q/K rows unpermuted exactly
  EXPECT_GT(std::abs(gguf - base), 1e-3 * base) << "the adapter changed nothing (base " << base << ")";
  const json ev = s.get("/api/evaluations").body;
  ASSERT_EQ(ev["rows"].size(), 3u);
  EXPECT_EQ(ev["rows"][2]["lora"], "adapter.gguf");

  write_file_atomic(loras / "notes.txt", "not an adapter");
  const Reply bad = s.post("/api/perplexity", perplexity_body("notes.txt"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["field"], "lora");
  EXPECT_EQ(bad.body["error"]["message"],
            "lora: 'notes.txt' is a file but not a GGUF LoRA adapter (hint: lora names a PEFT adapter folder "
            "(adapter_config.json + adapter_model.safetensors or adapter_model.bin) or a GGUF LoRA file in the loras "
            "folder)");
}
