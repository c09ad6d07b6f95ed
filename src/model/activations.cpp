// Activation layout; see activations.h.
#include "model/activations.h"

#include <algorithm>

#include "core/error.h"

namespace tpro {

namespace {
// Takes every buffer for N = B·T rows, in a fixed order, from an arena planned for at least
// that many rows (plan() below reserves the same sequence for the capacity).
template <typename Take>
void carve(Activations& a, const LlamaConfig& c, const LoraWeights* lora, size_t N, Take&& take) {
  const size_t D = size_t(c.n_embd), F = size_t(c.n_ff), Q = size_t(c.q_dim()), KV = size_t(c.kv_dim()),
               V = size_t(c.vocab_size), H = size_t(c.n_head), C = size_t(a.C);
  const size_t R = lora ? size_t(lora->cfg.r) : 0;
  auto take16 = [&](size_t n) { return a.bf16 ? reinterpret_cast<uint16_t*>(take((n + 1) / 2)) : nullptr; };
  a.layers.resize(size_t(c.n_layer));
  for (auto& L : a.layers) L.x_in = take(N * D);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerActs& L = a.layers[size_t(l)];
    if (a.recompute && l > 0) {  // share layer 0's buffers (LoRA targets are the same in every layer)
      float* x_in = L.x_in;
      L = a.layers[0];
      L.x_in = x_in;
      continue;
    }
    L.ln1 = take(N * D);
    L.rstd1 = take(N);
    L.q = take(N * Q);
    L.k = take(N * KV);
    L.v = take(N * KV);
    L.att = take(N * Q);
    L.lse = take(H * N);
    L.x_mid = take(N * D);
    L.ln2 = take(N * D);
    L.rstd2 = take(N);
    L.gate = take(N * F);
    L.up = take(N * F);
    L.h = take(N * F);
    for (int p = 0; p < kNumProj; ++p)
      L.lora_u[size_t(p)] = (lora && lora->find(l, Proj(p))) ? take(N * R) : nullptr;
    L.ln1_16 = take16(N * D);
    L.att_16 = take16(N * Q);
    L.ln2_16 = take16(N * D);
    L.h_16 = take16(N * F);
  }
  a.x_scratch = a.recompute ? take(N * D) : nullptr;
  a.x_out = take(N * D);
  a.lnf = take(N * D);
  a.rstdf = take(N);
  a.logits = take(C * V);
  a.gath = take(C * D);
  a.dgath = take(C * D);
  a.weight = take(N);
  a.targets = reinterpret_cast<int32_t*>(take(N));
  a.nll = take(N);
  a.dx = take(N * D);
  a.dln = take(N * D);
  a.dq = take(N * Q);
  a.dk = take(N * KV);
  a.dv = take(N * KV);
  a.datt = take(N * Q);
  a.dgate = take(N * F);
  a.dup = take(N * F);
  a.dh = take(N * F);
  a.dout_16 = take16(N * std::max({D, F, Q}));
}
}  // namespace

void make_activations(Activations& a, const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T,
                      bool recompute, bool bf16) {
  const size_t N = size_t(B * T);
  a.recompute = recompute;
  a.bf16 = bf16;
  a.capacity = B * T;
  a.C = std::min<int64_t>(int64_t(N), 256);
  a.arena = Arena();
  carve(a, c, lora, N, [&](size_t n) {
    a.arena.reserve(n * 4);
    return static_cast<float*>(nullptr);
  });
  a.arena.allocate();
  a.trained_rows.reserve(N);
  a.rope.build(c.rope_inv_freq(), std::max<int64_t>(T, 1));
  reshape_activations(a, c, lora, B, T);
}

void reshape_activations(Activations& a, const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T) {
  TPRO_CHECK(B * T <= a.capacity, "micro-batch ", B, "x", T, " exceeds activation capacity ", a.capacity);
  a.B = B;
  a.T = T;
  a.arena.reset_cursor();
  carve(a, c, lora, size_t(B * T), [&](size_t n) { return a.arena.take_f32(n); });
  a.pos_default.resize(size_t(B * T));
  for (int64_t i = 0; i < B * T; ++i) a.pos_default[size_t(i)] = int32_t(i % T);
}

}  // namespace tpro
