// The memory plan; see memory_plan.h.
#include "train/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "core/error.h"
#include "core/memory_info.h"
#include "model/activations.h"
#include "model/base_weights.h"

namespace tpro {

namespace {

// The matrices a step multiplies: every projection and the LM head.
template <typename F>
void for_each_product_matrix(const Model& m, F&& f) {
  for (const LayerWeights& L : m.layers)
    for (int i = 0; i < kNumProj; ++i) f(proj_weight(L, Proj(i)));
  f(m.lm_head);
}

WorkspaceShape workspace_shape(const Model& m, const LoraConfig& lc, int64_t B, int64_t T) {
  const LlamaConfig& c = m.cfg;
  WorkspaceShape s;
  s.B = B, s.T = T, s.N = B * T;
  s.W = std::max({c.n_embd, c.n_ff, c.q_dim()});
  s.R = lc.r;
  s.V = c.vocab_size;
  s.C = logit_chunk_rows(s.N);
  s.H = c.n_head, s.Hkv = c.n_head_kv, s.Dh = c.head_dim;
  s.dropout = lc.dropout > 0;
  s.dora = lc.dora;
  for_each_product_matrix(m, [&](const WeightMatrix& w) {
    s.bf16 |= w.bf16_compute;
    // Used in place: F32 multiplied in f32, BF16 in bf16; anything else is expanded in panels.
    const bool in_place = (w.type == WType::F32 && !w.bf16_compute) || (w.type == WType::BF16 && w.bf16_compute);
    s.panels |= !in_place;
  });
  return s;
}

}  // namespace

size_t gathered_bytes(uintptr_t data, size_t row_bytes, int64_t rows, const std::vector<int32_t>& used) {
  const uintptr_t begin = data, end = data + row_bytes * size_t(std::max<int64_t>(rows, 0));
  size_t bytes = 0;
  uintptr_t counted_to = begin;  // windows are counted in address order, each once
  for (const int32_t id : used) {
    if (id < 0 || id >= rows) continue;
    const uintptr_t r0 = begin + size_t(id) * row_bytes, r1 = r0 + row_bytes;
    const uintptr_t w0 = std::max({r0 / kFaultAroundBytes * kFaultAroundBytes, begin, counted_to});
    const uintptr_t w1 = std::min((r1 + kFaultAroundBytes - 1) / kFaultAroundBytes * kFaultAroundBytes, end);
    if (w1 > w0) bytes += w1 - w0, counted_to = w1;
  }
  return bytes;
}

MemoryPlan plan_memory(const Model& held, const LoraConfig& lc, const Backend& be, int64_t B, int64_t T,
                       bool recompute, bool pack, const std::vector<int32_t>* embed_rows) {
  MemoryPlan p;
  p.B = B, p.T = T, p.recompute = recompute;
  p.prepared = pack ? planned_prepared_bytes(held, be, B * T) : 0;
  p.packed = p.prepared > 0;
  const WeightMatrix& e = held.embed;
  if (embed_rows && e.data && e.data != held.lm_head.data) {
    const size_t all = wtype_matrix_bytes(e.type, e.rows, e.cols);
    p.embed_unread = all - std::min(all, gathered_bytes(uintptr_t(e.data), wtype_row_bytes(e.type, e.cols), e.rows,
                                                        *embed_rows));
  }
  p.weights = base_memory(held).total() + p.prepared - p.embed_unread;
  if (vocab_quantized(held)) p.vocab = describe_vocab_storage(held);
  // LoraState (params | grads | AdamW's m | v, one allocation) and the host image's four vectors:
  // AdamW's two f32 states are the largest of every optimizer's (docs/OPTIMIZERS.md), so this
  // bounds the others from above.
  const size_t n = size_t(lora_param_count(held.cfg, lc));
  p.adapter = (4 * n * sizeof(float) + 63) / 64 * 64 + 4 * n * sizeof(float);
  if (lc.dora) {  // and LoraState's DoRA weight norms: one per magnitude
    LoraConfig plain = lc;
    plain.dora = false;
    p.adapter += (n - size_t(lora_param_count(held.cfg, plain))) * sizeof(float);
  }
  p.activations = activation_bytes(held.cfg, lc, B, T, {.recompute = recompute}).total();
  p.workspace = be.workspace_bytes(workspace_shape(held, lc, B, T));
  return p;
}

std::string human_bytes(size_t bytes) {
  char buf[32];
  const double b = double(bytes);
  if (b >= double(1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", b / double(1ull << 30));
  else if (b >= double(1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

std::string describe_plan(const MemoryPlan& p) {
  return cat("weights ", human_bytes(p.weights), p.vocab.empty() ? std::string() : cat(" (", p.vocab, ")"),
             p.embed_unread ? cat(" (", human_bytes(p.embed_unread), " of the mapped embedding never read)") : std::string(),
             " + adapter ", human_bytes(p.adapter), " + activations ",
             human_bytes(p.activations), " + workspace ", human_bytes(p.workspace), " = ", human_bytes(p.total()),
             p.available ? cat(" of ", human_bytes(p.available), " available") : std::string(", available memory unknown"));
}

nlohmann::json plan_json(const MemoryPlan& p) {
  return {{"weights", p.weights},     {"prepared", p.prepared},   {"embed_unread", p.embed_unread},
          {"adapter", p.adapter},     {"activations", p.activations},
          {"workspace", p.workspace}, {"total", p.total()},
          {"available", p.available}, {"fits", p.fits()},
          {"micro_batch_rows", p.B},  {"longest_row", p.T},
          {"recompute", p.recompute}, {"packed", p.packed},
          {"vocab", p.vocab},
          {"text", describe_plan(p)}};
}

size_t memory_available_for(const Model& held, const LoraWeights* lw, const Backend& be) {
  const std::optional<size_t> avail = mem_available();
  if (!avail) return 0;
  const std::vector<AddressRange> mapped = file_mappings();
  size_t own = 0;
  auto matrix = [&](const WeightMatrix& w) {
    if (w.data) own += bytes_outside(mapped, w.data, wtype_matrix_bytes(w.type, w.rows, w.cols));
  };
  matrix(held.embed);
  if (held.lm_head.data != held.embed.data) matrix(held.lm_head);
  for (const LayerWeights& L : held.layers)
    for (int i = 0; i < kNumProj; ++i) matrix(proj_weight(L, Proj(i)));
  own += base_memory(held).vectors;
  if (lw) {
    own += (lw->params.size() + lw->grads.size()) * sizeof(float);
    for (const OptimBuffer& b : lw->state) own += b.f32.size() * sizeof(float) + b.codes.size();
  }
  return *avail + own + be.allocated_bytes();
}

MemoryChoice choose_memory_plan(const std::function<MemoryPlan(bool recompute, bool pack)>& plan, bool recompute,
                                bool pack, bool ignore_check) {
  MemoryChoice c{plan(recompute, pack), {}, recompute, pack};
  if (c.plan.fits()) return c;
  const MemoryPlan asked = c.plan;
  const std::string recompute_note = cat("memory plan without recomputation: ", describe_plan(asked),
                                         ": too much; gradient checkpointing is switched on (use_grad_checkpoint)");
  if (!recompute) {
    if (MemoryPlan with = plan(true, pack); with.fits()) return {with, {recompute_note}, true, pack};
  }
  if (asked.packed) {
    if (MemoryPlan without = plan(true, false); without.fits()) {
      MemoryChoice u{without, {}, true, false};
      if (!recompute) u.notes.push_back(recompute_note);
      u.notes.push_back(cat("memory plan with packed weights: ", human_bytes(plan(true, true).total()),
                            ": too much; the weights are not packed for the matmul kernels (pack_weights)"));
      return u;
    }
  }
  const MemoryPlan best = plan(true, false);
  const std::string what = cat("memory plan: ", describe_plan(asked),
                               best.total() < asked.total()
                                   ? cat(" (", human_bytes(best.total()), " with gradient checkpointing",
                                         asked.packed ? " and unpacked weights" : "", ")")
                                   : std::string(),
                               ": the run does not fit in the memory available");
  if (!ignore_check)
    fail(what, " (hint: a smaller micro_batch_size or cutoff_len, quantize: nf4, a lower lora_rank or fewer target ",
         "projections, or --ignore-memory-check to start anyway)");
  c.notes.push_back(cat("warning: ", what, "; starting anyway (ignore_memory_check)"));
  return c;
}

}  // namespace tpro
