// The sizing functions a memory plan is made of, against what is really allocated or held:
// activation_bytes against the backend's allocated bytes after make_activations (with and
// without recomputation, from a LoraConfig before any LoraWeights exists), lora_param_count
// against make_lora, planned_base against apply_base_options, and planned_prepared_bytes
// against prepare_weights.
#include <gtest/gtest.h>

#include "common/backend_util.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "model/activations.h"
#include "model/base_weights.h"
#include "model_test_util.h"

using namespace tpro;
using namespace tpro::test;

namespace {

LoraConfig lora_on(const char* targets, int64_t r = 4) {
  LoraConfig lc;
  lc.r = r;
  lc.targets = parse_targets(targets);
  return lc;
}

}  // namespace

TEST(MemorySizes, ActivationBytesAreWhatMakeActivationsAllocates) {
  const LlamaConfig c = small_config();
  for (bool recompute : {false, true})
    for (const char* targets : {"q-v", "all"}) {
      const LoraConfig lc = lora_on(targets);
      Rng rng(1);
      const LoraWeights lw = make_lora(c, lc, rng);
      const ActivationBytes planned = activation_bytes(c, lc, 3, 40, {.recompute = recompute});
      EXPECT_EQ(planned.total(), activation_bytes(c, &lw, 3, 40, {.recompute = recompute}).total());
      const size_t before = cpu().allocated_bytes();
      {
        Activations a;
        make_activations(a, cpu(), c, &lw, 3, 40, {.recompute = recompute});
        // Exact: the same carve sizes both, and every buffer is a multiple of the 64-byte alignment.
        EXPECT_EQ(cpu().allocated_bytes() - before, planned.total()) << targets << " recompute " << recompute;
        EXPECT_EQ(a.mem.size(), planned.buffers);
      }
      EXPECT_EQ(cpu().allocated_bytes(), before) << "freed with the Activations";
    }
}

TEST(MemorySizes, RecomputationAndShortRowsNeedLess) {
  LlamaConfig c = small_config();
  c.n_layer = 8;
  const LoraConfig lc = lora_on("all");
  const size_t kept = activation_bytes(c, lc, 2, 64).total(), recomputed =
      activation_bytes(c, lc, 2, 64, {.recompute = true}).total();
  EXPECT_LT(recomputed, kept / 2) << "of 8 layers' buffers only their inputs are kept";
  EXPECT_LT(activation_bytes(c, lc, 2, 16).total(), kept / 3);
}

TEST(MemorySizes, LoraParamCountIsMakeLoras) {
  const LlamaConfig c = small_config();
  for (const char* t : {"q-v", "k-v-down", "all"}) {
    Rng rng(2);
    EXPECT_EQ(lora_param_count(c, lora_on(t, 8)), make_lora(c, lora_on(t, 8), rng).n_params()) << t;
  }
  // Train Head (modules_to_save): V·D more for each copy, and the optimizers see two (V, D) matrices.
  LoraConfig lc = lora_on("q-v", 8);
  lc.save_embed = lc.save_head = true;
  Rng rng(2);
  const LoraWeights lw = make_lora(c, lc, rng);
  EXPECT_EQ(lora_param_count(c, lc), lw.n_params());
  EXPECT_EQ(lora_param_count(c, lc) - lora_param_count(c, lora_on("q-v", 8)), 2 * c.vocab_size * c.n_embd);
  const auto tensors = optim_tensors(lw);
  ASSERT_GE(tensors.size(), 2u);
  EXPECT_EQ(tensors.back().offset, lw.head_at);
  EXPECT_EQ(tensors.back().rows, c.vocab_size);
  EXPECT_EQ(tensors.back().cols, c.n_embd);
  EXPECT_EQ(tensors[tensors.size() - 2].offset, lw.embed_at);
}

TEST(MemorySizes, PlannedBaseIsWhatApplyBaseOptionsHolds) {
  const fs::path dir = temp_dir("m");
  // n_ff 96: down_proj's 96 columns are not a multiple of NF4's 64 and stay plain (planned too).
  write_random_model(dir, small_config(64, 96), 5, DType::BF16, 0.3f);
  for (const BaseWeightOptions& o : {BaseWeightOptions{"nf4", "auto", "f32"}, BaseWeightOptions{"q8_0", "f32", "bf16"},
                                    BaseWeightOptions{"none", "f16", "auto"}}) {
    Model m = load_model(dir);
    const Model planned = planned_base(m, o, cpu());
    apply_base_options(m, o, cpu());
    const BaseMemory want = base_memory(m), got = base_memory(planned);
    EXPECT_EQ(got.total(), want.total()) << o.quantize << " " << o.dtype;
    EXPECT_EQ(got.matrices, want.matrices) << o.quantize << " " << o.dtype;
    EXPECT_EQ(computes_bf16(planned), computes_bf16(m));
  }
}

// quantize_embedding / quantize_head, on the tied model and an untied one.
TEST(MemorySizes, PlannedBaseCountsTheQuantizedEmbeddingAndHead) {
  const fs::path dir = temp_dir("v");
  LlamaConfig tied = small_config(64, 96);
  tied.tie_word_embeddings = true;
  write_random_model(dir / "tied", tied, 5, DType::BF16, 0.3f);
  write_random_model(dir / "untied", small_config(64, 96), 5, DType::BF16, 0.3f);
  BaseWeightOptions o{"nf4", "auto", "f32"};
  o.quantize_embedding = "q4_0";
  o.quantize_head = "q8_0";
  BaseWeightOptions head_only{"none", "f16", "auto"};
  head_only.quantize_head = "q8_0";
  for (const char* which : {"tied", "untied"})
    for (const BaseWeightOptions& opt : {o, head_only}) {
      if (std::string(which) == "tied" && opt.quantize_embedding != "none") continue;  // refused: two types for one tensor
      Model m = load_model(dir / which);
      const Model planned = planned_base(m, opt, cpu());
      apply_base_options(m, opt, cpu());
      EXPECT_EQ(base_memory(planned).matrices, base_memory(m).matrices) << which << " " << opt.quantize_embedding;
      EXPECT_EQ(describe_vocab_storage(planned), describe_vocab_storage(m));
      EXPECT_GT(base_memory(m).matrices[size_t(WType::Q8_0)], 0u);
    }
}

TEST(MemorySizes, PlannedPreparedBytesAreWhatPrepareWeightsMakes) {
  const fs::path dir = temp_dir("p");
  write_random_model(dir, small_config(256, 512), 6, DType::F32, 0.3f);
  Model m = load_model(dir);
  set_compute(m, "f32", cpu());
  const size_t planned = planned_prepared_bytes(m, cpu(), 64);
  EXPECT_EQ(prepare_weights(m, cpu(), 64), planned);
  set_compute(m, "bf16", cpu());  // bf16 products are never packed
  EXPECT_EQ(planned_prepared_bytes(m, cpu(), 64), 0u);
}
