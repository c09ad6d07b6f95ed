// Activation layout; see activations.h.
#include "model/activations.h"

#include <algorithm>

#include "core/error.h"

namespace tpro {

int64_t logit_chunk_rows(int64_t N) { return std::min<int64_t>(N, 256); }

namespace {
constexpr size_t kAlign = 64;
int64_t chunk_rows(size_t N) { return logit_chunk_rows(int64_t(N)); }
size_t round_up(size_t b) { return (b + kAlign - 1) & ~(kAlign - 1); }

// Which projections carry an adapter (and its rank): what the buffers depend on of the LoRA,
// from a LoraWeights' slots or from a LoraConfig (every layer the same) before one exists.
struct AdapterSlots {
  const LoraWeights* lw = nullptr;
  const LoraConfig* lc = nullptr;
  size_t r() const { return lw ? size_t(lw->cfg.r) : lc ? size_t(lc->r) : 0; }
  bool has(int64_t l, Proj p) const { return lw ? lw->find(l, p) != nullptr : lc && lc->targets[size_t(p)]; }
};

// The RoPE table's cos and sin for n_pos positions of `half` frequencies.
size_t rope_table_floats(size_t half, int64_t n_pos) { return 2 * size_t(n_pos) * half; }

// Takes every buffer for N = B·T rows, in a fixed order; take(n) hands out n 4-byte elements.
template <typename Take>
void carve(Activations& a, const LlamaConfig& c, AdapterSlots lora, size_t N, Take&& take) {
  const size_t D = size_t(c.n_embd), F = size_t(c.n_ff), Q = size_t(c.q_dim()), KV = size_t(c.kv_dim()),
               V = size_t(c.vocab_size), H = size_t(c.n_head), C = size_t(a.C);
  const size_t R = lora.r();
  auto take_i32 = [&](size_t n) { return reinterpret_cast<int32_t*>(take(n)); };
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
    const bool qkn = c.qk_norm;
    L.q_raw = qkn ? take(N * Q) : nullptr;
    L.k_raw = qkn ? take(N * KV) : nullptr;
    L.rstd_q = qkn ? take(N * H) : nullptr;
    L.rstd_k = qkn ? take(N * size_t(c.n_head_kv)) : nullptr;
    const bool sw = c.sandwich_norms;
    L.o_out = sw ? take(N * D) : nullptr;
    L.rstd_pa = sw ? take(N) : nullptr;
    L.f_out = sw ? take(N * D) : nullptr;
    L.rstd_pf = sw ? take(N) : nullptr;
    for (int p = 0; p < kNumProj; ++p)
      L.lora_u[size_t(p)] = lora.has(l, Proj(p)) ? take(N * R) : nullptr;
  }
  a.x_scratch = a.recompute ? take(N * D) : nullptr;
  a.x_out = take(N * D);
  a.lnf = take(N * D);
  a.rstdf = take(N);
  a.logits = take(C * V);
  a.gath = take(C * D);
  a.dgath = take(C * D);
  a.dx = take(N * D);
  a.dln = take(N * D);
  a.dq = take(N * Q);
  a.dk = take(N * KV);
  a.dv = take(N * KV);
  a.datt = take(N * Q);
  a.dgate = take(N * F);
  a.dup = take(N * F);
  a.dh = take(N * F);
  a.dq_raw = c.qk_norm ? take(N * Q) : nullptr;
  a.dk_raw = c.qk_norm ? take(N * KV) : nullptr;
  a.dpost = c.sandwich_norms ? take(N * D) : nullptr;
  const size_t fused_w = std::max(Q + 2 * KV, 2 * F);
  a.fused = c.fused_proj ? take(N * fused_w) : nullptr;
  a.dfused = c.fused_proj ? take(N * fused_w) : nullptr;
  a.tokens = take_i32(N);
  a.pos = take_i32(N);
  a.seg_buf = take_i32(N);
  a.rows = take_i32(N);
  a.targets = take_i32(N);
  a.weight = take(N);
  a.nll = take(N);
}

// The bytes of every buffer for B·T rows, laid out as make_activations lays them out.
ActivationBytes planned_bytes(const LlamaConfig& c, AdapterSlots lora, int64_t B, int64_t T, ActivationOptions o) {
  const size_t N = size_t(B * T);
  Activations a;
  a.recompute = o.recompute;
  a.C = chunk_rows(N);
  ActivationBytes b;
  carve(a, c, lora, N, [&](size_t n) {
    b.buffers += round_up(n * 4);
    return static_cast<float*>(nullptr);
  });
  const size_t tables = c.rope_local_theta > 0.0 ? 2 : 1;  // Gemma 3's local layers have their own
  b.rope = tables * round_up(rope_table_floats(c.rope_inv_freq().size(), std::max<int64_t>(T, 1)) * sizeof(float));
  return b;
}
}  // namespace

ActivationBytes activation_bytes(const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T,
                                 ActivationOptions o) {
  return planned_bytes(c, {lora, nullptr}, B, T, o);
}

ActivationBytes activation_bytes(const LlamaConfig& c, const LoraConfig& lora, int64_t B, int64_t T,
                                 ActivationOptions o) {
  return planned_bytes(c, {nullptr, &lora}, B, T, o);
}

void make_activations(Activations& a, const Backend& be, const LlamaConfig& c, const LoraWeights* lora, int64_t B,
                      int64_t T, ActivationOptions o) {
  a = Activations();
  a.be = &be;
  a.recompute = o.recompute;
  a.capacity = B * T;
  a.C = chunk_rows(size_t(B * T));
  a.mem = DeviceArray<std::byte>(be, activation_bytes(c, lora, B, T, o).buffers);
  ensure_rope(a, c.rope_inv_freq(T), std::max<int64_t>(T, 1), c.rope_inv_freq_local(), c.rope_mscale());
  reshape_activations(a, c, lora, B, T);
}

void reshape_activations(Activations& a, const LlamaConfig& c, const LoraWeights* lora, int64_t B, int64_t T) {
  TPRO_CHECK(B * T <= a.capacity, "micro-batch ", B, "x", T, " exceeds activation capacity ", a.capacity);
  a.B = B;
  a.T = T;
  size_t used = 0;
  carve(a, c, {lora, nullptr}, size_t(B * T), [&](size_t n) {
    float* p = reinterpret_cast<float*>(a.mem.data() + used);
    used += round_up(n * 4);
    TPRO_CHECK(used <= a.mem.size(), "activation layout exceeds its plan");
    return p;
  });
  a.seg_start = nullptr;
  a.n_trained = 0;
}

namespace {
void ensure_table(const Backend& be, RopeTable& t, std::vector<float>& have, DeviceArray<float>& buf,
                  const std::vector<float>& inv_freq, int64_t n_pos, float mscale, float* have_mscale) {
  if (n_pos <= t.n_pos && inv_freq == have && mscale == *have_mscale) return;
  *have_mscale = mscale;
  const int64_t half = int64_t(inv_freq.size());
  buf = DeviceArray<float>(be, rope_table_floats(size_t(half), n_pos));
  be.rope_table(buf.data(), buf.data() + n_pos * half, inv_freq, n_pos, mscale);
  t = {buf.data(), buf.data() + n_pos * half, half, n_pos};
  have = inv_freq;
}
}  // namespace

void ensure_rope(Activations& a, const std::vector<float>& inv_freq, int64_t n_pos,
                 const std::vector<float>& inv_freq_local, float mscale) {
  ensure_table(*a.be, a.rope, a.rope_inv_freq, a.rope_buf, inv_freq, n_pos, mscale, &a.rope_mscale);
  float unscaled = 1.0f;
  if (!inv_freq_local.empty())
    ensure_table(*a.be, a.rope_local, a.rope_local_inv_freq, a.rope_local_buf, inv_freq_local, n_pos, 1.0f, &unscaled);
}

}  // namespace tpro
