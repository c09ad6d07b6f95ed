// Forward pass of the Llama block stack with LoRA, and the fused LM head + masked loss.
// Reads like the architecture: embed → [norm → qkv → rope → attention → o → +res →
// norm → gate/up → swiglu → down → +res] × L → norm → head → loss. Gemma adds a norm on each
// branch's output before its residual add, GeGLU, scaled embeddings and soft-capped scores
// and logits; Qwen3 and Gemma 3 normalise each head of q and k before RoPE.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "model/step.h"

namespace tpro {

AttnShape attn_shape(const LlamaConfig& c, int64_t layer, int64_t B, int64_t Tq, int64_t Tk, bool bf16) {
  AttnShape s{B, Tq, Tk, c.n_head, c.n_head_kv, c.head_dim, c.window_of(layer), bf16};
  s.scale = c.attn_scale();
  s.softcap = float(c.attn_softcap);
  return s;
}

namespace {
// The dropout stream of a projection: layer·7 + p as before Phi-3's fused projections existed
// (resumed runs keep their masks), the fused ones beyond every such number.
uint64_t dropout_stream(int64_t layer, Proj p) {
  return int(p) < 7 ? uint64_t(layer * 7 + int(p)) : (uint64_t(1) << 40) + uint64_t(layer * 2 + int(p) - 7);
}
}  // namespace

bool lora_operands(const LoraState* lw, const StepOptions& opt, int64_t layer, Proj p, float* u, LoraOperands* out) {
  const LoraSlot* s = lw ? lw->find(layer, p) : nullptr;
  if (!s) return false;
  const LoraConfig& c = lw->cfg();
  out->A = lw->params() + s->a;
  out->B = lw->params() + s->b;
  out->dA = lw->grads() + s->a;
  out->dB = lw->grads() + s->b;
  out->scale = float(c.scale());
  out->R = c.r;
  out->dropout = {};
  if (opt.train && c.dropout > 0.0)  // one stream per (micro-batch seed, layer, projection)
    out->dropout = {float(c.dropout), splitmix64(opt.seed ^ splitmix64(dropout_stream(layer, p) + 0x1000))};
  out->u = u;
  out->mag = c.dora ? lw->params() + s->m : nullptr;
  out->dmag = c.dora ? lw->grads() + s->m : nullptr;
  out->wnorm = c.dora ? lw->dora_norm(*s, &out->wnorm_stale) : nullptr;
  return true;
}

namespace {

const float* bias_of(const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); }

// out (N, O) = inp·Wᵀ + b (+ LoRA when the projection has an adapter).
void proj_forward(const Backend& be, float* out, const float* inp, const WeightMatrix& W,
                  const std::vector<float>& bias, const LoraState* lw, const StepOptions& opt, int64_t layer,
                  Proj p, float* u, int64_t N) {
  LoraOperands lo;
  be.project(out, inp, W, bias_of(bias), lora_operands(lw, opt, layer, p, u, &lo) ? &lo : nullptr, N);
}

// Next-token targets of the trained rows, in row order, on the device.
void prepare_targets(Activations& a, const BatchView& in, double loss_norm) {
  const int64_t N = in.B * in.T;
  auto& rows = a.host.rows;
  auto& targets = a.host.targets;
  auto& weight = a.host.weight;
  rows.clear(), targets.clear(), weight.clear();
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = n % in.T;
    if (t + 1 < in.T && (in.mask ? in.mask[n + 1] != 0 : true)) {
      rows.push_back(int32_t(n));
      targets.push_back(in.tokens[n + 1]);
      weight.push_back(float(1.0 / loss_norm));
    }
  }
  a.n_trained = int64_t(rows.size());
  const Backend& be = *a.be;
  be.upload(a.rows, rows.data(), rows.size() * sizeof(int32_t));
  be.upload(a.targets, targets.data(), targets.size() * sizeof(int32_t));
  be.upload(a.weight, weight.data(), weight.size() * sizeof(float));
}

// LM head + cross-entropy over the trained rows only, C rows at a time; leaves dL/dlnf in
// a.dln when training (zero on untrained rows). Returns Σ −log p in row order. An adapter that
// trains the head (modules_to_save) supplies it, W (V, D) f32 in its state, with f32 products:
// logits = g·Wᵀ, then from dlogits: dg = dlogits·W and dW += dlogitsᵀ·g.
double head_and_loss(const Model& m, const LoraState* lw, Activations& a, const StepOptions& opt, int64_t N) {
  const Backend& be = *a.be;
  const int64_t D = m.cfg.n_embd, V = m.cfg.vocab_size;
  const float* W = lw ? lw->head() : nullptr;
  if (opt.train) be.fill(a.dln, 0.0f, N * D);
  for (int64_t c0 = 0; c0 < a.n_trained; c0 += a.C) {
    const int64_t nc = std::min(a.C, a.n_trained - c0);
    be.gather_rows(a.gath, a.lnf, a.rows + c0, nc, D);
    if (W) be.gemm(false, true, nc, V, D, 1.0f, a.gath, D, W, D, 0.0f, a.logits, V);
    else be.project(a.logits, a.gath, m.lm_head, nullptr, nullptr, nc);
    be.cross_entropy(a.logits, a.targets + c0, a.weight + c0, nc, V, a.nll + c0,
                     opt.train ? Gradient::yes : Gradient::no, float(m.cfg.final_softcap));
    if (opt.train) {
      if (W) {
        be.gemm(false, false, nc, D, V, 1.0f, a.logits, V, W, D, 0.0f, a.dgath, D);
        be.gemm(true, false, V, D, nc, 1.0f, a.logits, V, a.gath, D, 1.0f, lw->dhead(), D);
      } else {
        be.project_backward(a.dgath, a.logits, nullptr, m.lm_head, nullptr, nc, Accumulate::no);
      }
      be.scatter_rows(a.dln, a.dgath, a.rows + c0, nc, D);
    }
  }
  auto& nll = a.host.nll;
  nll.resize(size_t(a.n_trained));
  be.download(nll.data(), a.nll, nll.size() * sizeof(float));
  double sum = 0.0;
  for (float x : nll) sum += double(x);
  return sum;
}

}  // namespace

void upload_batch(const Model& m, Activations& a, const BatchView& in) {
  const Backend& be = *a.be;
  const int64_t N = in.B * in.T;
  TPRO_CHECK(N <= a.capacity, "batch of ", in.B, "x", in.T, " exceeds activation capacity ", a.capacity);
  be.upload(a.tokens, in.tokens, size_t(N) * sizeof(int32_t));
  int32_t max_pos = int32_t(in.T - 1);
  if (in.pos) {
    max_pos = *std::max_element(in.pos, in.pos + N);
    be.upload(a.pos, in.pos, size_t(N) * sizeof(int32_t));
  } else {
    auto& pos = a.host.pos;
    pos.resize(size_t(N));
    for (int64_t i = 0; i < N; ++i) pos[size_t(i)] = int32_t(i % in.T);
    be.upload(a.pos, pos.data(), pos.size() * sizeof(int32_t));
  }
  a.seg_start = nullptr;
  if (in.seg_start) {
    be.upload(a.seg_buf, in.seg_start, size_t(N) * sizeof(int32_t));
    a.seg_start = a.seg_buf;
  }
  // The table may come from the config (make_activations); a GGUF rope_freqs tensor changes it.
  // Dynamic NTK and LongRoPE choose their frequencies by the positions the batch uses.
  const LlamaConfig& c = m.cfg;
  const int64_t n_pos = std::max<int64_t>(a.rope.n_pos, int64_t(max_pos) + 1);
  ensure_rope(a, c.rope_depends_on_length() ? c.rope_inv_freq(int64_t(max_pos) + 1) : m.inv_freq, n_pos,
              m.inv_freq_local, c.rope_mscale());
}

void embed_tokens(const Model& m, Activations& a, int64_t N, int64_t T, const StepOptions& opt, const LoraState* lw) {
  const Backend& be = *a.be;
  const LlamaConfig& c = m.cfg;
  float* x = a.layers[0].x_in;
  if (lw && lw->embed()) be.gather_rows(x, lw->embed(), a.tokens, N, c.n_embd);  // the adapter's trained copy
  else be.embedding_forward(x, a.tokens, m.embed, N);
  const bool noise = opt.train && opt.neftune_alpha > 0.0;
  // NEFTune hooks the embedding module's output: Gemma 2 scales after it, Gemma 3 inside it.
  if (noise && !c.embed_scale_inside) be.neftune_noise(x, N, T, c.n_embd, opt.neftune_alpha, opt.seed);
  if (c.embed_scale > 0.0) be.scale(x, N * c.n_embd, float(c.embed_scale));
  if (noise && c.embed_scale_inside) be.neftune_noise(x, N, T, c.n_embd, opt.neftune_alpha, opt.seed);
}

void layer_forward(const Model& m, const LoraState* lw, Activations& a, int64_t l, const StepOptions& opt,
                   float* x_next, KvCache* kv) {
  const Backend& be = *a.be;
  const LlamaConfig& c = m.cfg;
  const int64_t N = a.B * a.T, D = c.n_embd, F = c.n_ff, KV = c.kv_dim();
  const float eps = float(c.rms_norm_eps);
  const LayerWeights& W = m.layers[size_t(l)];
  LayerActs& L = a.layers[size_t(l)];
  // Keys and values: saved for backward, or appended to the cache.
  float* k_all = kv ? kv->k + l * kv->capacity * KV : L.k;
  float* v_all = kv ? kv->v + l * kv->capacity * KV : L.v;
  const int64_t past = kv ? kv->len : 0;
  TPRO_CHECK(!kv || a.B == 1, "generation runs one sequence at a time");
  const AttnShape shape = attn_shape(c, l, a.B, a.T, past + a.T, W.wq.bf16_compute);
  const RopeTable& rope = a.rope_of(c, l);
  // attention
  be.rmsnorm_forward(L.ln1, L.rstd1, L.x_in, W.ln1.data(), eps, N, D);
  float* k_new = k_all + past * KV;
  if (c.qk_norm) {  // Qwen3, Gemma 3: RMSNorm over each head of q and k, then RoPE
    proj_forward(be, L.q_raw, L.ln1, W.wq, W.bq, lw, opt, l, Proj::Q, L.u(Proj::Q), N);
    proj_forward(be, L.k_raw, L.ln1, W.wk, W.bk, lw, opt, l, Proj::K, L.u(Proj::K), N);
    be.rmsnorm_forward(L.q, L.rstd_q, L.q_raw, W.q_norm.data(), eps, N * c.n_head, c.head_dim);
    be.rmsnorm_forward(k_new, L.rstd_k, L.k_raw, W.k_norm.data(), eps, N * c.n_head_kv, c.head_dim);
  } else if (c.fused_proj) {  // Phi-3: one qkv_proj, its q, k, v column blocks split out
    const int64_t Q = c.q_dim(), QKV = Q + 2 * KV;
    proj_forward(be, a.fused, L.ln1, W.wqkv, {}, lw, opt, l, Proj::QKV, L.u(Proj::QKV), N);
    be.copy_columns(L.q, Q, a.fused, QKV, N, Q, Accumulate::no);
    be.copy_columns(k_new, KV, a.fused + Q, QKV, N, KV, Accumulate::no);
    be.copy_columns(v_all + past * KV, KV, a.fused + Q + KV, QKV, N, KV, Accumulate::no);
  } else {
    proj_forward(be, L.q, L.ln1, W.wq, W.bq, lw, opt, l, Proj::Q, L.u(Proj::Q), N);
    proj_forward(be, k_new, L.ln1, W.wk, W.bk, lw, opt, l, Proj::K, L.u(Proj::K), N);
  }
  if (!c.fused_proj) proj_forward(be, v_all + past * KV, L.ln1, W.wv, W.bv, lw, opt, l, Proj::V, L.u(Proj::V), N);
  be.rope_forward(L.q, a.pos, rope, N, c.n_head, c.head_dim);
  be.rope_forward(k_new, a.pos, rope, N, c.n_head_kv, c.head_dim);
  be.attention_forward(L.att, L.lse, L.q, k_all, v_all, a.seg_start, shape, kv ? KV : 0);
  if (c.sandwich_norms) {  // Gemma: x_mid = x_in + norm(o(att))
    proj_forward(be, L.o_out, L.att, W.wo, W.bo, lw, opt, l, Proj::O, L.u(Proj::O), N);
    be.rmsnorm_forward(L.x_mid, L.rstd_pa, L.o_out, W.ln_post_attn.data(), eps, N, D);
  } else {
    proj_forward(be, L.x_mid, L.att, W.wo, W.bo, lw, opt, l, Proj::O, L.u(Proj::O), N);
  }
  be.add(L.x_mid, L.x_in, N * D);
  // MLP
  be.rmsnorm_forward(L.ln2, L.rstd2, L.x_mid, W.ln2.data(), eps, N, D);
  if (c.fused_proj) {  // Phi-3: one gate_up_proj, gate columns then up columns
    proj_forward(be, a.fused, L.ln2, W.wgate_up, {}, lw, opt, l, Proj::GateUp, L.u(Proj::GateUp), N);
    be.copy_columns(L.gate, F, a.fused, 2 * F, N, F, Accumulate::no);
    be.copy_columns(L.up, F, a.fused + F, 2 * F, N, F, Accumulate::no);
  } else {
    proj_forward(be, L.gate, L.ln2, W.wgate, W.bgate, lw, opt, l, Proj::Gate, L.u(Proj::Gate), N);
    proj_forward(be, L.up, L.ln2, W.wup, W.bup, lw, opt, l, Proj::Up, L.u(Proj::Up), N);
  }
  if (c.mlp_act == MlpAct::gelu_tanh) {
    be.geglu_forward(L.h, L.gate, L.up, N * F);
  } else {
    be.swiglu_forward(L.h, L.gate, L.up, N * F);
  }
  if (c.sandwich_norms) {  // Gemma: x_next = x_mid + norm(down(h))
    proj_forward(be, L.f_out, L.h, W.wdown, W.bdown, lw, opt, l, Proj::Down, L.u(Proj::Down), N);
    be.rmsnorm_forward(x_next, L.rstd_pf, L.f_out, W.ln_post_ffn.data(), eps, N, D);
  } else {
    proj_forward(be, x_next, L.h, W.wdown, W.bdown, lw, opt, l, Proj::Down, L.u(Proj::Down), N);
  }
  be.add(x_next, L.x_mid, N * D);
}

StepResult forward(const Model& m, const LoraState* lw, Activations& a, const BatchView& in,
                   const StepOptions& opt) {
  const Backend& be = *a.be;
  const LlamaConfig& c = m.cfg;
  TPRO_CHECK(in.B == a.B && in.T == a.T, "activations sized for ", a.B, "x", a.T, ", batch is ", in.B, "x", in.T);
  const int64_t N = in.B * in.T, D = c.n_embd;
  upload_batch(m, a, in);
  embed_tokens(m, a, N, in.T, opt, lw);

  for (int64_t l = 0; l < c.n_layer; ++l) {
    check_cancel(opt.cancel, "running layer ", l, " of a forward pass");
    float* x_next = l + 1 < c.n_layer ? a.layers[size_t(l + 1)].x_in : a.x_out;
    layer_forward(m, lw, a, l, opt, x_next);
  }
  be.rmsnorm_forward(a.lnf, a.rstdf, a.x_out, m.norm.data(), float(c.rms_norm_eps), N, D);

  prepare_targets(a, in, opt.loss_norm);
  StepResult r;
  r.nll_sum = head_and_loss(m, lw, a, opt, N);
  r.n_trained = a.n_trained;
  return r;
}

void compute_logits(const Model& m, const Activations& a, float* logits, const LoraState* lw) {
  const int64_t N = a.B * a.T, V = m.cfg.vocab_size, D = m.cfg.n_embd;
  DeviceArray<float> out(*a.be, size_t(N * V));
  if (lw && lw->head()) a.be->gemm(false, true, N, V, D, 1.0f, a.lnf, D, lw->head(), D, 0.0f, out.data(), V);
  else a.be->project(out.data(), a.lnf, m.lm_head, nullptr, nullptr, N);
  if (m.cfg.final_softcap > 0.0) a.be->softcap(out.data(), N * V, float(m.cfg.final_softcap));
  out.download({logits, size_t(N * V)});
}

}  // namespace tpro
