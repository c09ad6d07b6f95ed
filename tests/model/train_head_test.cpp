// Train Head (PEFT modules_to_save: full trained copies of embed_tokens and lm_head): their
// gradients against central finite differences of the loss on the golden fixtures (a tied
// Llama, and Gemma 2 for the embedding scale and the soft-capped logits); save and reload give
// the same logits, with PEFT's tensor names and modules_to_save; generation and merging use
// the copies; a llama.cpp adapter refuses them; bad folders are refused by tensor and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "common/backend_util.h"
#include "common/test_util.h"
#include "core/error.h"
#include "formats/gguf_adapter.h"
#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "model/generate.h"
#include "model/merge.h"
#include "model/model_test_util.h"
#include "model/step.h"

using namespace tpro;
using tpro::test::cpu;
using tpro::test::logits_of;
using ::testing::HasSubstr;

namespace {

fs::path golden(const std::string& name) { return fs::path(TPRO_FIXTURES) / "golden" / name; }

// The fixture's adapter with both modules trained: LoRA as saved, the copies from the base,
// then moved off it (and apart from each other) so that a gradient cannot hide behind the tie.
LoraWeights with_head(const Model& m, const LoraWeights& base, bool embed = true, bool head = true) {
  LoraConfig lc = base.cfg;
  lc.dropout = 0.0;
  lc.save_embed = embed, lc.save_head = head;
  Rng rng(1);
  LoraWeights lw = make_lora(m.cfg, lc, rng);
  std::copy(base.params.begin(), base.params.end(), lw.params.begin());  // the LoRA matrices come first
  init_saved_modules(lw, m);
  Rng noise(7);
  for (size_t i = base.params.size(); i < lw.params.size(); ++i) lw.params[i] += float(noise.uniform(-0.05, 0.05));
  return lw;
}

struct Batch {
  std::vector<int32_t> tokens;
  int64_t T = 0;
  BatchView view() const { return {1, T, tokens.data(), nullptr, nullptr, nullptr}; }
};

Batch batch_of(int64_t V) {
  Batch b;
  b.T = 12;
  for (int64_t i = 0; i < b.T; ++i) b.tokens.push_back(int32_t((i * 37 + 5) % V));
  return b;
}

// Mean loss of the batch; with grads, lw.grads receives its gradient.
double loss_of(const Model& m, LoraWeights& lw, const Batch& b, bool grads) {
  LoraState st(cpu(), lw);
  Activations a;
  make_activations(a, cpu(), m.cfg, &lw, 1, b.T);
  StepOptions opt;
  opt.train = grads;
  opt.loss_norm = double(b.T - 1);
  cpu().fill(st.grads(), 0.0f, st.n_params());
  const double nll = forward(m, &st, a, b.view(), opt).nll_sum;
  if (grads) {
    backward(m, st, a, b.view(), opt);
    st.download(lw);
  }
  return nll / double(b.T - 1);
}

// Central differences at `at` (offsets into lw.params) against lw.grads there.
void expect_gradients(const Model& m, LoraWeights& lw, const Batch& b, const std::vector<int64_t>& at) {
  loss_of(m, lw, b, true);
  const std::vector<float> g = lw.grads;
  double largest = 0;
  for (int64_t i : at) {
    // f32 loss: h = 1e-2 keeps rounding (~1e-7 of a loss near 5, over 2h) and curvature (h²) both
    // below 1e-4; the tolerance is 3e-4 + 2% of the gradient.
    const float h = 1e-2f, keep = lw.params[size_t(i)];
    lw.params[size_t(i)] = keep + h;
    const double up = loss_of(m, lw, b, false);
    lw.params[size_t(i)] = keep - h;
    const double down = loss_of(m, lw, b, false);
    lw.params[size_t(i)] = keep;
    const double fd = (up - down) / (2.0 * double(h));
    EXPECT_NEAR(g[size_t(i)], fd, 3e-4 + 0.02 * std::abs(fd)) << "parameter " << i;
    largest = std::max(largest, std::abs(fd));
  }
  EXPECT_GT(largest, 1e-3) << "the entries checked carry a gradient";
}

}  // namespace

class TrainHeadGrad : public ::testing::TestWithParam<const char*> {};

TEST_P(TrainHeadGrad, EmbeddingAndHeadGradientsMatchFiniteDifferences) {
  const Model m = load_model(golden(GetParam()));
  LoraWeights lw = with_head(m, load_adapter(golden(GetParam()), m));
  const int64_t D = m.cfg.n_embd, V = m.cfg.vocab_size;
  const Batch b = batch_of(V);
  std::vector<int64_t> at;
  for (int k = 0; k < 4; ++k) {
    const int64_t tok = b.tokens[size_t(k * 3)];   // embedding rows the batch reads
    at.push_back(lw.embed_at + tok * D + (k * 5) % D);
    const int64_t tgt = b.tokens[size_t(k * 3 + 1)];  // head rows of targets, and of a token never the target
    at.push_back(lw.head_at + tgt * D + (k * 7) % D);
    at.push_back(lw.head_at + (V - 1 - k) * D + (k * 3) % D);
  }
  expect_gradients(m, lw, b, at);
  // A row no token reads has no gradient in the embedding.
  std::vector<bool> used(static_cast<size_t>(V), false);
  for (int32_t t : b.tokens) used[size_t(t)] = true;
  const int64_t unused = int64_t(std::find(used.begin(), used.end(), false) - used.begin());
  ASSERT_LT(unused, V);
  for (int64_t j = 0; j < D; ++j) EXPECT_EQ(lw.grads[size_t(lw.embed_at + unused * D + j)], 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Families, TrainHeadGrad, ::testing::Values("llama_gqa_tied", "gemma2_softcap"));

TEST(TrainHead, SaveReloadGenerateAndMergeUseTheCopies) {
  const Model m = load_model(golden("llama_gqa_tied"));
  const LoraWeights lw = with_head(m, load_adapter(golden("llama_gqa_tied"), m));
  const std::vector<int32_t> toks = {1, 5, 9, 33, 2, 96, 0, 14};
  const auto with = logits_of(m, &lw, toks);
  LoraWeights plain = load_adapter(golden("llama_gqa_tied"), m);
  EXPECT_GT(test::max_abs_diff(with, logits_of(m, &plain, toks)), 1e-3) << "the copies change the output";

  const fs::path d = test::temp_dir("saved");
  save_adapter(d, lw, "base");
  const AdapterConfig ac = parse_adapter_config(read_file(d / "adapter_config.json"), "x");
  EXPECT_EQ(ac.modules_to_save, (std::vector<std::string>{"embed_tokens", "lm_head"}));
  SafeTensorsFile st(d / "adapter_model.safetensors");
  const int64_t V = m.cfg.vocab_size, D = m.cfg.n_embd;
  for (const char* name : {"base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight"}) {
    ASSERT_TRUE(st.has(name)) << name;
    EXPECT_EQ(st.view(name).shape, (std::vector<int64_t>{V, D})) << name;
  }
  const LoraWeights back = load_adapter(d, m);
  EXPECT_EQ(back.params, lw.params);
  EXPECT_EQ(logits_of(m, &back, toks), with);

  // Generation (KV cache) reads the copies too.
  Generator g(cpu(), m, &back, 32);
  const float* last = g.feed(toks.data(), int64_t(toks.size()));
  for (int64_t j = 0; j < V; ++j) ASSERT_NEAR(last[j], with[size_t((toks.size() - 1) * V + j)], 1e-4) << j;

  // Merged into the base: the copies replace the tied pair, untied.
  const Model merged = merge_lora(cpu(), m, back, WType::F32);
  EXPECT_FALSE(merged.cfg.tie_word_embeddings);
  EXPECT_LT(test::max_abs_diff(logits_of(merged, nullptr, toks), with), 1e-4);
  // Only the head trained: the embedding stays the base's.
  const LoraWeights head_only = with_head(m, plain, false, true);
  const Model mh = with_saved_modules(m, head_only);
  EXPECT_EQ(mh.embed.data, m.embed.data);
  EXPECT_NE(mh.lm_head.data, m.lm_head.data);
  EXPECT_LT(test::max_abs_diff(logits_of(mh, &plain, toks), logits_of(m, &head_only, toks)), 1e-4);
}

TEST(TrainHead, GgufAdapterRefusesAndBadFoldersAreNamed) {
  const Model m = load_model(golden("llama_gqa_tied"));
  const LoraWeights lw = with_head(m, load_adapter(golden("llama_gqa_tied"), m));
  const fs::path d = test::temp_dir("bad");
  EXPECT_ERROR_HAS(save_adapter_gguf(d / "a.gguf", lw, m.cfg, "base"),
                   "cannot write GGUF adapter " + (d / "a.gguf").string() + ": the adapter trains full copies of "
                   "embed_tokens and lm_head (modules_to_save, Train Head), which a llama.cpp LoRA adapter cannot carry");
  EXPECT_FALSE(fs::exists(d / "a.gguf"));

  save_adapter(d, lw, "base");
  const std::string config = read_file(d / "adapter_config.json");
  auto with_modules = [&](const std::string& list) {
    nlohmann::json j = nlohmann::json::parse(config);
    j["modules_to_save"] = nlohmann::json::parse(list);
    write_file_atomic(d / "adapter_config.json", j.dump());
  };
  with_modules(R"(["embed_tokens", "norm"])");
  EXPECT_ERROR_HAS(load_adapter(d, m), "modules_to_save lists \"norm\", tpro saves only \"embed_tokens\" and \"lm_head\"");
  with_modules(R"("lm_head")");
  EXPECT_ERROR_HAS(load_adapter(d, m), "modules_to_save must be a list of module names or null, got \"lm_head\"");
  with_modules(R"(["embed_tokens"])");
  EXPECT_ERROR_HAS(load_adapter(d, m), "tensor base_model.model.lm_head.weight is a trained copy of lm_head, which "
                                       "adapter_config.json's modules_to_save does not list");
  with_modules("null");  // PEFT writes null for none: the tensors are then unexplained
  EXPECT_ERROR_HAS(load_adapter(d, m), "tensor base_model.model.lm_head.weight is a trained copy of lm_head");
  // Listed but missing.
  with_modules(R"(["embed_tokens", "lm_head"])");
  SafeTensorsFile full(d / "adapter_model.safetensors");
  SafeTensorsWriter w;
  for (const auto& name : full.names())
    if (name != "base_model.model.lm_head.weight") w.add_f32(name, full.view(name).shape, full.view(name).f32());
  w.write(d / "adapter_model.safetensors");
  EXPECT_ERROR_HAS(load_adapter(d, m), "missing tensor base_model.model.lm_head.weight (lm_head is in "
                                       "adapter_config.json's modules_to_save)");
  // Of another vocabulary.
  SafeTensorsWriter w2;
  std::vector<float> small(size_t(10 * m.cfg.n_embd));
  for (const auto& name : full.names())
    if (name.find("layers") != std::string::npos) w2.add_f32(name, full.view(name).shape, full.view(name).f32());
  w2.add_f32("base_model.model.model.embed_tokens.weight", {10, m.cfg.n_embd}, small.data());
  w2.add_f32("base_model.model.lm_head.weight", {10, m.cfg.n_embd}, small.data());
  w2.write(d / "adapter_model.safetensors");
  EXPECT_ERROR_HAS(load_adapter(d, m), cat("tensor base_model.model.lm_head.weight has shape (10, ",
                                           m.cfg.n_embd, "), expected (", m.cfg.vocab_size, ", ", m.cfg.n_embd, ")"));
}
