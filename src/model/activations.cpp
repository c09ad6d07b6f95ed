// Activation layout; see activations.h.
#include "model/activations.h"

#include <algorithm>

namespace tpro {

void make_activations(Activations& a, const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T) {
  const size_t N = size_t(B * T), D = size_t(c.n_embd), F = size_t(c.n_ff), Q = size_t(c.q_dim()),
               KV = size_t(c.kv_dim()), V = size_t(c.vocab_size), H = size_t(c.n_head);
  a.B = B;
  a.T = T;
  a.C = std::min<int64_t>(int64_t(N), 256);
  const size_t R = lora ? size_t(lora->cfg.r) : 0;
  auto plan = [&](Arena& ar) {
    for (int64_t l = 0; l < c.n_layer; ++l) {
      for (size_t n : {N * D, N * D, N, N * Q, N * KV, N * KV, N * Q, H * N, N * D, N * D, N, N * F, N * F, N * F})
        ar.reserve(n * 4);
      for (int p = 0; p < kNumProj; ++p)
        if (lora && lora->find(l, Proj(p))) ar.reserve(N * R * 4);
    }
    for (size_t n : {N * D, N * D, N, size_t(a.C) * V, size_t(a.C) * D, size_t(a.C) * D, N, N, N, N * D, N * D, N * Q, N * KV, N * KV, N * Q, N * F,
                     N * F, N * F})
      ar.reserve(n * 4);
  };
  a.arena = Arena();
  plan(a.arena);
  a.arena.allocate();
  Arena& ar = a.arena;
  a.layers.resize(size_t(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerActs& L = a.layers[size_t(l)];
    L.x_in = ar.take_f32(N * D);
    L.ln1 = ar.take_f32(N * D);
    L.rstd1 = ar.take_f32(N);
    L.q = ar.take_f32(N * Q);
    L.k = ar.take_f32(N * KV);
    L.v = ar.take_f32(N * KV);
    L.att = ar.take_f32(N * Q);
    L.lse = ar.take_f32(H * N);
    L.x_mid = ar.take_f32(N * D);
    L.ln2 = ar.take_f32(N * D);
    L.rstd2 = ar.take_f32(N);
    L.gate = ar.take_f32(N * F);
    L.up = ar.take_f32(N * F);
    L.h = ar.take_f32(N * F);
    for (int p = 0; p < kNumProj; ++p)
      L.lora_u[size_t(p)] = (lora && lora->find(l, Proj(p))) ? ar.take_f32(N * R) : nullptr;
  }
  a.x_out = ar.take_f32(N * D);
  a.lnf = ar.take_f32(N * D);
  a.rstdf = ar.take_f32(N);
  a.logits = ar.take_f32(size_t(a.C) * V);
  a.gath = ar.take_f32(size_t(a.C) * D);
  a.dgath = ar.take_f32(size_t(a.C) * D);
  a.trained_rows.reserve(N);
  a.weight = ar.take_f32(N);
  a.targets = static_cast<int32_t*>(ar.take(N * 4));
  a.nll = ar.take_f32(N);
  a.dx = ar.take_f32(N * D);
  a.dln = ar.take_f32(N * D);
  a.dq = ar.take_f32(N * Q);
  a.dk = ar.take_f32(N * KV);
  a.dv = ar.take_f32(N * KV);
  a.datt = ar.take_f32(N * Q);
  a.dgate = ar.take_f32(N * F);
  a.dup = ar.take_f32(N * F);
  a.dh = ar.take_f32(N * F);
  a.pos_default.resize(N);
  for (size_t i = 0; i < N; ++i) a.pos_default[i] = int32_t(i % size_t(T));
  a.rope.build(c.rope_inv_freq(), std::max<int64_t>(T, 1));
}

}  // namespace tpro
