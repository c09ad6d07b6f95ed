// QLoRA storage options (which matrices are quantized, the memory report, refusals) and
// merging: a merged model computes what base + adapter compute, in memory, after a round trip
// through a Hugging Face folder or a GGUF file, in f32 and within bf16 rounding, and on an
// NF4 base.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/backend_util.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "kernels/cpu/gemm.h"
#include "model/base_weights.h"
#include "model/merge.h"
#include "model_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

LoraWeights random_lora(const LlamaConfig& c, std::array<bool, kNumProj> targets) {
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets = targets;
  Rng rng(9);
  LoraWeights lw = make_lora(c, lc, rng);
  for (auto& p : lw.params) p = float(rng.uniform(-0.2, 0.2));
  return lw;
}

Model model_at(const fs::path& dir, const LlamaConfig& c, DType dt = DType::F32) {
  write_random_model(dir, c, 21, dt, 0.3f);
  return load_model(dir);
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::abs(x)));
  return m;
}

}  // namespace

TEST(QloraBase, QuantizesProjectionsOnly) {
  const fs::path d = temp_dir("q");
  Model m = model_at(d / "hf", small_config(), DType::BF16);
  const BaseMemory before = base_memory(m);
  apply_base_options(m, {"nf4", "auto"}, test::cpu());
  for (const LayerWeights& L : m.layers)
    for (const WeightMatrix* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wgate, &L.wup, &L.wdown}) EXPECT_EQ(w->type, WType::NF4);
  EXPECT_EQ(m.embed.type, WType::BF16);
  EXPECT_EQ(m.lm_head.type, WType::BF16);
  const BaseMemory after = base_memory(m);
  const LlamaConfig& c = m.cfg;
  const int64_t per_layer = 2 * c.n_embd * c.q_dim() + 2 * c.n_embd * c.kv_dim() + 3 * c.n_embd * c.n_ff;
  size_t nf4 = 0;
  for (const LayerWeights& L : m.layers)
    for (const WeightMatrix* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wgate, &L.wup, &L.wdown})
      nf4 += wtype_matrix_bytes(WType::NF4, w->rows, w->cols);
  EXPECT_EQ(after.matrices[size_t(WType::NF4)], nf4);
  EXPECT_EQ(after.matrices[size_t(WType::BF16)], size_t(2 * c.vocab_size * c.n_embd * 2));
  EXPECT_EQ(before.matrices[size_t(WType::BF16)], after.matrices[size_t(WType::BF16)] + size_t(c.n_layer * per_layer * 2));
  EXPECT_EQ(after.vectors, before.vectors);
  // 4 bits + an 8-bit absmax per 64 + one f32 per 256 absmax (+ one f32 offset per matrix).
  EXPECT_NEAR(double(nf4) / double(c.n_layer * per_layer), 4.127 / 8, 0.01);
  EXPECT_THAT(describe_base_memory(after), ::testing::MatchesRegex("BF16 24.0 KiB, NF4 [0-9.]+ KiB, f32 vectors [0-9.]+ KiB: "
                                                                   "[0-9.]+ KiB in all"));
}

TEST(QloraBase, DtypeStoresTheRestAndQuantizedGgufWeightsStay) {
  const fs::path d = temp_dir("q");
  Model m = model_at(d / "hf", small_config());
  apply_base_options(m, {"q8_0", "bf16"}, test::cpu());
  EXPECT_EQ(m.layers[1].wdown.type, WType::Q8_0);
  EXPECT_EQ(m.embed.type, WType::BF16);
  EXPECT_EQ(m.lm_head.type, WType::BF16);
  apply_base_options(m, {"nf4", "auto"}, test::cpu());  // already quantized: unchanged
  EXPECT_EQ(m.layers[1].wdown.type, WType::Q8_0);
}

TEST(QloraBase, ComputePrecisionPerMatrix) {
  const fs::path d = temp_dir("q");
  Model m = model_at(d / "hf", small_config());  // f32
  apply_base_options(m, {"none", "auto", "auto"}, test::cpu());
  EXPECT_FALSE(computes_bf16(m)) << "auto keeps an f32 base in f32";
  apply_base_options(m, {"q8_0", "bf16", "auto"}, test::cpu());  // quantized projections, bf16 embedding/head
  EXPECT_EQ(m.layers[0].wq.bf16_compute, cpu_native_bf16());
  EXPECT_EQ(m.lm_head.bf16_compute, cpu_native_bf16());
  set_compute(m, "f32", test::cpu());
  EXPECT_FALSE(computes_bf16(m));
  set_compute(m, "bf16", test::cpu());
  EXPECT_TRUE(m.layers[1].wdown.bf16_compute && m.lm_head.bf16_compute && m.embed.bf16_compute);
  Model f16 = model_at(d / "hf16", small_config());
  apply_base_options(f16, {"none", "f16", "auto"}, test::cpu());
  EXPECT_FALSE(computes_bf16(f16)) << "auto never narrows f16 weights to bf16";
}

TEST(QloraBase, Refusals) {
  const fs::path d = temp_dir("q");
  Model m = model_at(d / "hf", small_config(32, 64));
  EXPECT_ERROR_HAS(apply_base_options(m, {"nf3", "auto"}, test::cpu()),
                   "unknown quantize option 'nf3' (expected none, nf4, q8_0, q4_0, q4_k or q6_k)");
  EXPECT_ERROR_HAS(apply_base_options(m, {"none", "f8"}, test::cpu()), "unknown dtype 'f8'");
  EXPECT_ERROR_HAS(apply_base_options(m, {"none", "auto", "f16"}, test::cpu()),
                   "unknown compute dtype 'f16' (expected auto, f32 or bf16)");
}

// Columns that do not fill whole blocks (stories-size models, the demo's 172) keep such a
// projection unquantized, with a warning naming it, rather than refusing the model.
TEST(QloraBase, RaggedProjectionsStayUnquantizedWithAWarning) {
  const fs::path d = temp_dir("ragged");
  Model m = model_at(d / "hf", small_config(64, 96));  // D = 64 fits NF4 blocks, F = 96 does not
  const std::string note = apply_base_options(m, {"nf4", "auto"}, test::cpu());
  EXPECT_EQ(note, "warning: 2 of 14 projection matrices are kept unquantized: their columns are not a multiple of the "
                  "NF4 block of 64: down_proj (96 columns) (hint: q8_0 and q4_0 have blocks of 32)");
  for (const LayerWeights& L : m.layers) {
    EXPECT_EQ(L.wq.type, WType::NF4);
    EXPECT_EQ(L.wgate.type, WType::NF4);  // (96, 64): 64 columns
    EXPECT_EQ(L.wdown.type, WType::F32);  // (64, 96)
  }
  // Everything fits q8_0's 32: no warning.
  Model q = model_at(d / "hf2", small_config(64, 96));
  EXPECT_EQ(apply_base_options(q, {"q8_0", "auto"}, test::cpu()), "");
  EXPECT_EQ(q.layers[0].wdown.type, WType::Q8_0);
}

TEST(Merge, MergedModelComputesBasePlusAdapter) {
  const fs::path d = temp_dir("m");
  const Model base = model_at(d / "hf", small_config());
  std::array<bool, kNumProj> t{};
  t.fill(true);
  const LoraWeights lw = random_lora(base.cfg, t);
  const auto toks = sample_tokens(base.cfg.vocab_size);
  const auto want = logits_of(base, &lw, toks);
  const Model merged = merge_lora(test::cpu(), base, lw, WType::F32);
  const auto got = logits_of(merged, nullptr, toks);
  // W + s·B·A rounded once to f32 vs the two products summed in the forward.
  EXPECT_LT(max_abs_diff(got, want), 1e-4 * max_abs(want));
  EXPECT_GT(max_abs_diff(got, logits_of(base, nullptr, toks)), 0.1) << "the adapter must matter";
  save_model_hf(d / "merged", merged, DType::F32);
  EXPECT_EQ(logits_of(load_model(d / "merged"), nullptr, toks), got);
  save_model_gguf(d / "merged.gguf", merged, {});
  EXPECT_EQ(logits_of(load_model(d / "merged.gguf"), nullptr, toks), got);
}

TEST(Merge, Bf16WithinRounding) {
  const fs::path d = temp_dir("m");
  const Model base = model_at(d / "hf", small_config());
  const LoraWeights lw = random_lora(base.cfg, parse_targets("q-v"));
  const auto toks = sample_tokens(base.cfg.vocab_size);
  const auto want = logits_of(base, &lw, toks);
  save_model_hf(d / "merged", merge_lora(test::cpu(), base, lw, WType::BF16), DType::BF16);
  const Model back = load_model(d / "merged");
  EXPECT_EQ(back.layers[0].wq.type, WType::BF16);
  EXPECT_EQ(back.embed.type, WType::BF16);
  // bf16 keeps 8 significant bits (relative rounding 2^-9 per weight) through 2 layers.
  EXPECT_LT(max_abs_diff(logits_of(back, nullptr, toks), want), 0.02 * max_abs(want));
}

TEST(Merge, OnAnNf4Base) {
  const fs::path d = temp_dir("m");
  Model base = model_at(d / "hf", small_config());
  apply_base_options(base, {"nf4", "auto", "f32"}, test::cpu());  // the merged model multiplies in f32 too
  const LoraWeights lw = random_lora(base.cfg, parse_targets("all"));
  const auto toks = sample_tokens(base.cfg.vocab_size);
  const auto want = logits_of(base, &lw, toks);
  const Model merged = merge_lora(test::cpu(), base, lw, WType::F32);
  EXPECT_EQ(merged.layers[0].wq.type, WType::F32);
  EXPECT_LT(max_abs_diff(logits_of(merged, nullptr, toks), want), 1e-4 * max_abs(want));
}

TEST(Merge, RefusesAnAdapterOfAnotherShape) {
  const fs::path d = temp_dir("m");
  const Model base = model_at(d / "hf", small_config());
  LlamaConfig other = base.cfg;
  other.n_layer = 3;
  const LoraWeights lw = random_lora(other, parse_targets("q-v"));
  EXPECT_ERROR_HAS(merge_lora(test::cpu(), base, lw, WType::F32),
                   "cannot merge: the adapter has 3 layers, the base model 2");
}
