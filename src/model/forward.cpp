// Forward pass of the Llama block stack with LoRA, and the fused LM head + masked loss.
// Reads like the architecture: embed → [norm → qkv → rope → attention → o → +res →
// norm → gate/up → swiglu → down → +res] × L → norm → head → loss.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/parallel.h"
#include "model/step.h"

namespace tpro {

LoraDropout lora_dropout_for(const LoraWeights& lw, const StepOptions& opt, int64_t layer, Proj p) {
  if (!opt.train || lw.cfg.dropout <= 0.0) return {};
  return {float(lw.cfg.dropout), splitmix64(opt.seed ^ splitmix64(uint64_t(layer * kNumProj + int(p)) + 0x1000))};
}

namespace {

// out (N, O) = inp·Wᵀ + b (+ LoRA when the projection has an adapter); inp16 is inp in bf16
// or null.
void proj_forward(const Backend& be, float* out, const float* inp, const uint16_t* inp16, const WeightMatrix& W,
                  const std::vector<float>& bias, const LoraWeights* lw, const StepOptions& opt, int64_t layer, Proj p,
                  float* u, int64_t N) {
  if (!W.bf16_compute) inp16 = nullptr;
  be.linear_forward(out, inp, W, bias.empty() ? nullptr : bias.data(), N, false, inp16);
  const LoraSlot* s = lw ? lw->find(layer, p) : nullptr;
  if (!s) return;
  be.lora_forward(out, u, inp, lw->params.data() + s->a, lw->params.data() + s->b, float(lw->cfg.scale()),
                  lora_dropout_for(*lw, opt, layer, p), N, s->in, s->out, lw->cfg.r, inp16);
}

void add_in_place(float* x, const float* y, int64_t n) {
#pragma omp parallel for simd if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// NEFTune (Jain et al. 2023): uniform noise of magnitude α/√(T·D) on the input embeddings.
void add_neftune_noise(float* x, int64_t N, int64_t T, int64_t D, double alpha, uint64_t seed) {
  const float mag = float(alpha / std::sqrt(double(T * D)));
  const uint64_t s = splitmix64(seed ^ 0x4e454654ull);
#pragma omp parallel for if (worth_parallel(N * D))
  for (int64_t i = 0; i < N * D; ++i) x[i] += mag * (2.0f * hash_uniform(s, uint64_t(i)) - 1.0f);
}

void prepare_targets(Activations& a, const StepInputs& in) {
  const int64_t N = in.B * in.T;
  a.trained_rows.clear();
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = n % in.T;
    const bool has_next = t + 1 < in.T && (in.mask ? in.mask[n + 1] != 0 : true);
    a.targets[n] = has_next ? in.tokens[n + 1] : -1;
    a.weight[n] = has_next ? float(1.0 / in.loss_norm) : 0.0f;
    if (has_next) a.trained_rows.push_back(n);
  }
}

// LM head + cross-entropy over the trained rows only, C rows at a time; leaves dL/dlnf in
// a.dln when training (zero on untrained rows).
double head_and_loss(const Model& m, Activations& a, const StepOptions& opt, const Backend& be, int64_t N) {
  const int64_t D = m.cfg.n_embd, V = m.cfg.vocab_size;
  if (opt.train) std::fill(a.dln, a.dln + N * D, 0.0f);
  double nll_weighted = 0.0;
  const int64_t n_rows = int64_t(a.trained_rows.size());
  thread_local std::vector<int32_t> tg;
  thread_local std::vector<float> wt;
  for (int64_t c0 = 0; c0 < n_rows; c0 += a.C) {
    const int64_t nc = std::min(a.C, n_rows - c0);
    tg.resize(size_t(nc));
    wt.resize(size_t(nc));
    for (int64_t i = 0; i < nc; ++i) {
      const int64_t r = a.trained_rows[size_t(c0 + i)];
      std::copy(a.lnf + r * D, a.lnf + (r + 1) * D, a.gath + i * D);
      tg[size_t(i)] = a.targets[r];
      wt[size_t(i)] = a.weight[r];
    }
    be.linear_forward(a.logits, a.gath, m.lm_head, nullptr, nc, false, nullptr);
    thread_local std::vector<float> nll;
    nll.resize(size_t(nc));
    nll_weighted += be.cross_entropy_fused(a.logits, tg.data(), wt.data(), nc, V, nll.data(), opt.train);
    for (int64_t i = 0; i < nc; ++i) a.nll[a.trained_rows[size_t(c0 + i)]] = nll[size_t(i)];
    if (opt.train) {
      be.linear_backward(a.dgath, a.logits, m.lm_head, nc, false, nullptr);
      for (int64_t i = 0; i < nc; ++i) {
        const int64_t r = a.trained_rows[size_t(c0 + i)];
        std::copy(a.dgath + i * D, a.dgath + (i + 1) * D, a.dln + r * D);
      }
    }
  }
  return nll_weighted;
}

}  // namespace

const uint16_t* bf16_copy(const Backend& be, bool bf16, uint16_t* dst, const float* src, int64_t n) {
  if (!bf16 || !dst) return nullptr;
  be.to_bf16(src, dst, n);
  return dst;
}

void layer_forward(const Model& m, const LoraWeights* lw, Activations& a, int64_t l, const StepInputs& in,
                   const StepOptions& opt, const Backend& be, float* x_next) {
  const LlamaConfig& c = m.cfg;
  const int64_t N = in.B * in.T, D = c.n_embd, F = c.n_ff;
  const float eps = float(c.rms_norm_eps);
  const int32_t* pos = in.pos ? in.pos : a.pos_default.data();
  const LayerWeights& W = m.layers[size_t(l)];
  const bool bf16 = layer_computes_bf16(W);
  const AttnShape shape = layer_attn_shape(c, in, layer_computes_bf16(W));
  LayerActs& L = a.layers[size_t(l)];
  // attention
  be.rmsnorm_forward(L.ln1, L.rstd1, L.x_in, W.ln1.data(), eps, N, D);
  const uint16_t* ln1_16 = bf16_copy(be, bf16, L.ln1_16, L.ln1, N * D);
  proj_forward(be, L.q, L.ln1, ln1_16, W.wq, W.bq, lw, opt, l, Proj::Q, L.lora_u[0], N);
  proj_forward(be, L.k, L.ln1, ln1_16, W.wk, W.bk, lw, opt, l, Proj::K, L.lora_u[1], N);
  proj_forward(be, L.v, L.ln1, ln1_16, W.wv, W.bv, lw, opt, l, Proj::V, L.lora_u[2], N);
  be.rope_forward(L.q, pos, a.rope, N, c.n_head, c.head_dim, false);
  be.rope_forward(L.k, pos, a.rope, N, c.n_head_kv, c.head_dim, false);
  be.attention_forward(L.att, L.lse, L.q, L.k, L.v, in.seg_start, shape, 0);
  const uint16_t* att_16 = bf16_copy(be, bf16, L.att_16, L.att, N * c.q_dim());
  proj_forward(be, L.x_mid, L.att, att_16, W.wo, W.bo, lw, opt, l, Proj::O, L.lora_u[3], N);
  add_in_place(L.x_mid, L.x_in, N * D);
  // MLP
  be.rmsnorm_forward(L.ln2, L.rstd2, L.x_mid, W.ln2.data(), eps, N, D);
  const uint16_t* ln2_16 = bf16_copy(be, bf16, L.ln2_16, L.ln2, N * D);
  proj_forward(be, L.gate, L.ln2, ln2_16, W.wgate, W.bgate, lw, opt, l, Proj::Gate, L.lora_u[4], N);
  proj_forward(be, L.up, L.ln2, ln2_16, W.wup, W.bup, lw, opt, l, Proj::Up, L.lora_u[5], N);
  be.swiglu_forward(L.h, L.gate, L.up, N * F);
  const uint16_t* h_16 = bf16_copy(be, bf16, L.h_16, L.h, N * F);
  proj_forward(be, x_next, L.h, h_16, W.wdown, W.bdown, lw, opt, l, Proj::Down, L.lora_u[6], N);
  add_in_place(x_next, L.x_mid, N * D);
}

StepResult forward(const Model& m, const LoraWeights* lw, Activations& a, const StepInputs& in, const StepOptions& opt,
                   const Backend& be) {
  const LlamaConfig& c = m.cfg;
  TPRO_CHECK(in.B == a.B && in.T == a.T, "activations sized for ", a.B, "x", a.T, ", batch is ", in.B, "x", in.T);
  const int64_t N = in.B * in.T, D = c.n_embd;
  const float eps = float(c.rms_norm_eps);
  const int32_t* pos = in.pos ? in.pos : a.pos_default.data();
  const int32_t max_pos = *std::max_element(pos, pos + N);
  // The table may come from the config (make_activations); a GGUF rope_freqs tensor changes it.
  if (max_pos >= a.rope.n_pos || a.rope.inv_freq != m.inv_freq) {
    a.rope.build(m.inv_freq, std::max<int64_t>(a.rope.n_pos, int64_t(max_pos) + 1));
  }
  be.embedding_forward(a.layers[0].x_in, in.tokens, m.embed, N);
  if (opt.train && opt.neftune_alpha > 0.0) add_neftune_noise(a.layers[0].x_in, N, in.T, D, opt.neftune_alpha, opt.seed);

  for (int64_t l = 0; l < c.n_layer; ++l) {
    check_cancel(opt.cancel, "running layer ", l, " of a forward pass");
    float* x_next = l + 1 < c.n_layer ? a.layers[size_t(l + 1)].x_in : a.x_out;
    layer_forward(m, lw, a, l, in, opt, be, x_next);
  }
  be.rmsnorm_forward(a.lnf, a.rstdf, a.x_out, m.norm.data(), eps, N, D);

  prepare_targets(a, in);
  head_and_loss(m, a, opt, be, N);
  StepResult r;
  r.n_trained = int64_t(a.trained_rows.size());
  for (int64_t row : a.trained_rows) r.nll_sum += double(a.nll[row]);
  return r;
}

void compute_logits(const Model& m, const Activations& a, float* logits, const Backend& be) {
  be.linear_forward(logits, a.lnf, m.lm_head, nullptr, a.B * a.T, false, nullptr);
}

}  // namespace tpro
