// The memory plan of a run: its parts against the backend's measured allocations for the tiny
// model, activations sized by the longest row batched (cutoff 99999 on short blocks), the
// refusal with its hint, --ignore-memory-check, and gradient checkpointing switched on when
// only the recomputing plan fits (said and logged), and a memory-mapped untied embedding counted
// at the fault-around windows of the rows the data embeds. The budget is faked with memory_limit_gib.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/backend_util.h"
#include "common/test_util.h"
#include "formats/load.h"
#include "model/activations.h"
#include "model/base_weights.h"
#include "train/memory_plan.h"
#include "train/trainer_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

nlohmann::json log_of(const TrainSummary& s) {
  return nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
}

LoraConfig all_targets(int64_t r) {
  LoraConfig lc;
  lc.r = r;
  lc.dropout = 0.1;
  lc.targets = parse_targets("all");
  return lc;
}

constexpr double kGiB = double(size_t(1) << 30);

}  // namespace

TEST(MemoryPlan, PartsMatchTheAllocations) {
  const fs::path dir = fresh_dir("memory_plan_parts");
  write_byte_level_model(dir / "model", byte_level_llama(64, 128, 2, 4, 2), 3);
  Model m = load_model(dir / "model");
  set_compute(m, "f32", cpu());
  const LoraConfig lc = all_targets(4);
  const int64_t B = 2, T = 48;
  const MemoryPlan plan = plan_memory(m, lc, cpu(), B, T, false, true);
  EXPECT_EQ(plan.weights, base_memory(m).total() + plan.prepared);

  const size_t before = cpu().allocated_bytes();
  Rng rng(1);
  const LoraWeights lw = make_lora(m.cfg, lc, rng);
  ASSERT_EQ(lw.state.size(), 2u) << "AdamW's exp_avg and exp_avg_sq (the largest state of every optimizer)";
  size_t host = (lw.params.size() + lw.grads.size()) * sizeof(float);
  for (const OptimBuffer& b : lw.state) host += b.f32.size() * sizeof(float) + b.codes.size();
  LoraState state(cpu(), lw);
  EXPECT_EQ(cpu().allocated_bytes() - before + host, plan.adapter) << "device state + host image";
  const size_t after_state = cpu().allocated_bytes();
  Activations acts;
  make_activations(acts, cpu(), m.cfg, &lw, B, T);
  // Margin 0: the plan's activation part is the same layout code's sum, rounded as alloc rounds.
  EXPECT_EQ(cpu().allocated_bytes() - after_state, plan.activations);
  EXPECT_EQ(prepare_weights(m, cpu(), B * T), plan.prepared);
  EXPECT_GT(plan.workspace, size_t(2 * B * T * m.cfg.q_dim()) * sizeof(float)) << "at least attention's dK/dV sums";
  EXPECT_EQ(plan.total(), plan.weights + plan.adapter + plan.activations + plan.workspace);
}

// A quantized head alone (f32 projections multiplied in f32) still needs the matmul's panel
// scratch, and the plan names what is quantized.
TEST(MemoryPlan, QuantizedHeadIsCountedAndNamed) {
  const fs::path dir = fresh_dir("memory_plan_head");
  write_byte_level_model(dir / "model", byte_level_llama(64, 128, 2, 4, 2), 3);
  Model m = load_model(dir / "model");
  set_compute(m, "f32", cpu());
  const LoraConfig lc = all_targets(4);
  const MemoryPlan plain = plan_memory(m, lc, cpu(), 2, 48, false, false);
  EXPECT_EQ(plain.vocab, "");
  EXPECT_THAT(describe_plan(plain), ::testing::StartsWith("weights " + human_bytes(plain.weights) + " + adapter"));
  BaseWeightOptions o{"none", "auto", "f32"};
  o.quantize_head = "q8_0";
  apply_base_options(m, o, cpu());
  const MemoryPlan q = plan_memory(m, lc, cpu(), 2, 48, false, false);
  EXPECT_EQ(q.weights, base_memory(m).total());
  EXPECT_LT(q.weights, plain.weights);
  EXPECT_GT(q.workspace, plain.workspace) << "the head's rows are expanded panel by panel";
  EXPECT_EQ(q.vocab, "token embedding and LM head (tied, one tensor) Q8_0");
  EXPECT_THAT(describe_plan(q), HasSubstr(" (token embedding and LM head (tied, one tensor) Q8_0) + adapter"));
  EXPECT_EQ(plan_json(q)["vocab"], q.vocab);
}

TEST(MemoryPlan, IsSaidAndLoggedAtTheStart) {
  Fixture f = make_fixture("memory_plan_said");
  f.p.max_steps = 1;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_TRUE(said(c, "memory plan: weights ")) << "the plan line";
  EXPECT_TRUE(said(c, " available")) << "checked against the machine's memory";
  const auto plan = log_of(s)["memory_plan"];
  ASSERT_TRUE(plan.is_object()) << log_of(s).dump();
  for (const char* k : {"weights", "adapter", "activations", "workspace", "total", "available"})
    EXPECT_GT(plan[k].get<size_t>(), 0u) << k;
  EXPECT_EQ(plan["total"].get<size_t>(), plan["weights"].get<size_t>() + plan["adapter"].get<size_t>() +
                                             plan["activations"].get<size_t>() + plan["workspace"].get<size_t>());
  EXPECT_TRUE(plan["fits"].get<bool>());
  EXPECT_FALSE(plan["recompute"].get<bool>());
  EXPECT_THAT(plan["text"].get<std::string>(), HasSubstr(" available"));
}

TEST(MemoryPlan, ActivationsAreSizedByTheLongestRowNotCutoff) {
  Fixture f = make_fixture("memory_plan_cutoff");
  f.p.data.cutoff_len = 99999;  // the text's blocks are a few hundred bytes at most
  f.p.max_steps = 1;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  const auto plan = log_of(s)["memory_plan"];
  const int64_t T = plan["longest_row"].get<int64_t>();
  EXPECT_LE(T, 512);
  EXPECT_EQ(T % 8, 0) << "rounded up to pad_to_multiple";
  const Model m = load_model(f.p.model);
  LoraConfig lc = all_targets(f.p.lora_rank);
  EXPECT_EQ(plan["activations"].get<size_t>(), activation_bytes(m.cfg, lc, f.p.micro_batch_size, T).total());
  EXPECT_LT(plan["activations"].get<size_t>(), activation_bytes(m.cfg, lc, f.p.micro_batch_size, 99999).total() / 100);
  EXPECT_TRUE(said(c, cat("rows of up to ", T, " tokens")));
}

TEST(MemoryPlan, ARunThatDoesNotFitIsRefusedWithTheFlagNamed) {
  Fixture f = make_fixture("memory_plan_refused");
  f.p.memory_limit_gib = 1e-6;  // about 1 KiB
  RunControl ctl;
  Collected c;
  EXPECT_THAT(thrown_by([&] { run_training(f.p, ctl, collect(c)); }),
              ErrorWith("the run does not fit in the memory available (hint: "));
  const std::string e = error_of([&] { run_training(f.p, ctl, collect(c)); });
  EXPECT_THAT(e, HasSubstr("memory plan: weights "));
  EXPECT_THAT(e, HasSubstr(" of 1.0 KiB available"));
  EXPECT_THAT(e, HasSubstr("with gradient checkpointing"));
  EXPECT_THAT(e, HasSubstr("--ignore-memory-check to start anyway"));
  EXPECT_FALSE(fs::exists(f.dir / "run")) << "nothing written";

  f.p.ignore_memory_check = true;
  f.p.max_steps = 1;
  Collected c2;
  const TrainSummary s = run_training(f.p, ctl, collect(c2));
  EXPECT_TRUE(said(c2, "; starting anyway (ignore_memory_check)"));
  EXPECT_FALSE(log_of(s)["memory_plan"]["fits"].get<bool>());
}

TEST(MemoryPlan, CheckpointingIsSwitchedOnWhenOnlyItFits) {
  Fixture f = make_fixture("memory_plan_recompute");
  f.p.max_steps = 1;
  f.p.data.cutoff_len = 256;
  f.p.micro_batch_size = 4;
  f.p.memory_limit_gib = 1000;
  RunControl ctl;
  const MemoryPlanReport kept = plan_training_memory(f.p, ctl);
  ASSERT_FALSE(kept.choice.recompute);
  f.p.use_grad_checkpoint = true;
  const MemoryPlanReport recomputed = plan_training_memory(f.p, ctl);
  ASSERT_LT(recomputed.choice.plan.total(), kept.choice.plan.total());
  f.p.use_grad_checkpoint = false;
  f.p.memory_limit_gib = double(kept.choice.plan.total() + recomputed.choice.plan.total()) / 2 / kGiB;

  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_TRUE(said(c, ": too much; gradient checkpointing is switched on (use_grad_checkpoint)"));
  EXPECT_TRUE(said(c, "(recomputed per layer)"));
  const auto log = log_of(s);
  EXPECT_TRUE(log["memory_plan"]["recompute"].get<bool>());
  EXPECT_EQ(log["memory_plan"]["total"].get<size_t>(), recomputed.choice.plan.total());
  ASSERT_TRUE(log.contains("events")) << log.dump();
  EXPECT_EQ(log["events"][0]["kind"], "memory");
  EXPECT_THAT(log["events"][0]["message"].get<std::string>(),
              HasSubstr("memory plan without recomputation: weights "));
}

TEST(MemoryPlan, ChoosesTheFirstPlanThatFits) {
  // Fake plans: 100 KiB as asked, 60 KiB recomputed, 30 KiB recomputed and unpacked.
  const auto plans = [](size_t available_kib) {
    return [available_kib](bool recompute, bool pack) {
      MemoryPlan p;
      p.activations = (recompute ? (pack ? 60 : 30) : 100) * 1024;
      p.packed = pack;
      p.available = available_kib * 1024;
      return p;
    };
  };
  MemoryChoice c = choose_memory_plan(plans(100), false, true, false);
  EXPECT_FALSE(c.recompute);
  EXPECT_TRUE(c.notes.empty());
  c = choose_memory_plan(plans(70), false, true, false);
  EXPECT_TRUE(c.recompute);
  EXPECT_TRUE(c.pack);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_THAT(c.notes[0], HasSubstr("gradient checkpointing is switched on"));
  c = choose_memory_plan(plans(40), false, true, false);
  EXPECT_TRUE(c.recompute);
  EXPECT_FALSE(c.pack);
  ASSERT_EQ(c.notes.size(), 2u);
  EXPECT_THAT(c.notes[1], HasSubstr("the weights are not packed for the matmul kernels (pack_weights)"));
  EXPECT_THAT(thrown_by([&] { choose_memory_plan(plans(20), false, true, false); }),
              ErrorWith("(30.0 KiB with gradient checkpointing and unpacked weights)"));
  c = choose_memory_plan(plans(20), true, true, true);
  EXPECT_EQ(c.plan.total(), 60u * 1024) << "ignored: the plan as asked";
  EXPECT_THAT(c.notes.at(0), HasSubstr("warning: memory plan: "));
}

TEST(MemoryPlan, GatheredRowsCountTheirFaultAroundWindows) {
  constexpr size_t K = 1024, W = kFaultAroundBytes;
  static_assert(kFaultAroundBytes == 64 * 1024);
  const uintptr_t base = 16 * W;  // window-aligned
  EXPECT_EQ(gathered_bytes(base, 8 * K, 1000, {}), 0u);
  EXPECT_EQ(gathered_bytes(base, 8 * K, 1000, {0}), W) << "rows 0-7 share a window";
  EXPECT_EQ(gathered_bytes(base, 8 * K, 1000, {0, 1, 7}), W);
  EXPECT_EQ(gathered_bytes(base, 8 * K, 1000, {0, 8}), 2 * W);
  EXPECT_EQ(gathered_bytes(base, 8 * K, 1000, {3, 999}), 2 * W);
  EXPECT_EQ(gathered_bytes(base, 8 * K, 1000, {-1, 1000, 5000}), 0u) << "ids outside the matrix are not rows";
  // A row wider than a window spans the windows it touches, clipped to the matrix's end.
  EXPECT_EQ(gathered_bytes(base, 100 * K, 1, {0}), 100 * K);
  EXPECT_EQ(gathered_bytes(base, 100 * K, 3, {1}), 3 * W) << "[100K, 200K) lies in windows 1-3";
  // A matrix that does not start on a window: the first window is clipped to its start.
  EXPECT_EQ(gathered_bytes(base + 4 * K, 8 * K, 1000, {0}), W - 4 * K);
  // Every row: the whole matrix, never more.
  std::vector<int32_t> all(1000);
  for (int32_t i = 0; i < 1000; ++i) all[size_t(i)] = i;
  EXPECT_EQ(gathered_bytes(base + 4 * K, 8 * K, 1000, all), 1000 * 8 * K);
  EXPECT_EQ(gathered_bytes(base, 10, 3, {0, 1, 2}), 30u);
}

TEST(MemoryPlan, AMappedUntiedEmbeddingCountsOnlyTheRowsEmbedded) {
  const fs::path dir = fresh_dir("memory_plan_embed");
  LlamaConfig cfg = byte_level_llama(64, 128, 2, 4, 2, 8192);  // f32 embedding: 2 MiB, rows of 256 B
  cfg.tie_word_embeddings = false;
  write_byte_level_model(dir / "model", cfg, 3);
  const Model m = load_model(dir / "model");
  const LoraConfig lc = all_targets(4);
  const size_t all = size_t(8192) * 64 * sizeof(float);
  const std::vector<int32_t> rows{65, 66, 8000};
  const MemoryPlan whole = plan_memory(m, lc, cpu(), 1, 32, false, false);
  const MemoryPlan some = plan_memory(m, lc, cpu(), 1, 32, false, false, &rows);
  EXPECT_EQ(whole.embed_unread, 0u);
  EXPECT_EQ(some.embed_unread, all - gathered_bytes(uintptr_t(m.embed.data), 256, 8192, rows));
  EXPECT_GE(some.embed_unread, all - 3 * kFaultAroundBytes);
  EXPECT_EQ(some.weights, whole.weights - some.embed_unread);
  EXPECT_THAT(describe_plan(some), HasSubstr(" of the mapped embedding never read) + adapter "));
  EXPECT_EQ(plan_json(some)["embed_unread"].get<size_t>(), some.embed_unread);

  // Tied: the LM head reads every row, so all of it counts.
  cfg.tie_word_embeddings = true;
  write_byte_level_model(dir / "tied", cfg, 3);
  const Model t = load_model(dir / "tied");
  EXPECT_EQ(plan_memory(t, lc, cpu(), 1, 32, false, false, &rows).embed_unread, 0u);
}

TEST(MemoryPlan, ARunCountsTheEmbeddingRowsItsDataUses) {
  Fixture f = make_fixture("memory_plan_embed_run");
  LlamaConfig cfg = byte_level_llama(32, 64, 2, 4, 2, 16384);  // f32 embedding: 2 MiB; the data uses < 259 rows
  cfg.tie_word_embeddings = false;
  write_byte_level_model(f.dir / "model", cfg, 3);
  f.p.max_steps = 1;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  const auto plan = log_of(s)["memory_plan"];
  // The byte-level rows (0-258, 32 KiB) lie in one or two windows; the rest is never read.
  const size_t all = size_t(16384) * 32 * sizeof(float);
  EXPECT_GE(plan["embed_unread"].get<size_t>(), all - 2 * kFaultAroundBytes);
  EXPECT_LT(plan["embed_unread"].get<size_t>(), all);
  EXPECT_TRUE(said(c, " of the mapped embedding never read)"));

  // Train Head copies the whole embedding: all of it counts.
  f.p.lora_modulessave = true;
  f.p.always_override = true;
  const TrainSummary h = run_training(f.p, ctl, collect(c));
  EXPECT_EQ(log_of(h)["memory_plan"]["embed_unread"].get<size_t>(), 0u);
}
