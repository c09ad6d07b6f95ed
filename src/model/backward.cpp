// Backward pass: the forward in reverse, from dL/d(final norm) to the LoRA gradients.
// Frozen weights get no gradient; each projection yields dx (and dA, dB where adapted); the
// trained embedding copy of modules_to_save gets its rows' gradient last (the head's comes
// with the loss, in forward.cpp).
#include "core/error.h"
#include "model/step.h"

namespace tpro {

namespace {

// dinp (N, I) (+)= dout·W (+ LoRA path); dA, dB += when the projection has an adapter.
void proj_backward(const Backend& be, float* dinp, const float* dout, const float* inp, const WeightMatrix& W,
                   LoraState& lw, const StepOptions& opt, int64_t layer, Proj p, float* u, int64_t N,
                   Accumulate acc) {
  LoraOperands lo;
  be.project_backward(dinp, dout, inp, W, lora_operands(&lw, opt, layer, p, u, &lo) ? &lo : nullptr, N, acc);
}

}  // namespace

void backward(const Model& m, LoraState& lw, Activations& a, const BatchView& in, const StepOptions& opt) {
  const Backend& be = *a.be;
  const LlamaConfig& c = m.cfg;
  TPRO_CHECK(opt.train, "backward() after an evaluation forward");
  TPRO_CHECK(in.B == a.B && in.T == a.T, "backward of a ", in.B, "x", in.T, " batch after a ", a.B, "x", a.T,
             " forward");
  const int64_t N = in.B * in.T, D = c.n_embd, F = c.n_ff;
  using enum Accumulate;

  // a.dln holds dL/dlnf from the fused head; dx becomes dL/d(residual stream).
  be.fill(a.dx, 0.0f, N * D);
  be.rmsnorm_backward(a.dx, a.dln, a.x_out, m.norm.data(), a.rstdf, N, D);

  for (int64_t l = c.n_layer - 1; l >= 0; --l) {
    check_cancel(opt.cancel, "running layer ", l, " of a backward pass");
    // Recomputation: the layers share one set of buffers; refill it from the saved input.
    if (a.recompute) layer_forward(m, &lw, a, l, opt, a.x_scratch);
    LayerActs& L = a.layers[size_t(l)];
    const LayerWeights& W = m.layers[size_t(l)];
    const AttnShape shape = attn_shape(c, l, in.B, in.T, in.T, W.wq.bf16_compute);
    const RopeTable& rope = a.rope_of(c, l);
    // MLP: x_out = x_mid + down(act(gate(ln2)) · up(ln2)), Gemma: x_mid + norm(down(...))
    const float* d_down = a.dx;
    if (c.sandwich_norms) {
      be.fill(a.dpost, 0.0f, N * D);
      be.rmsnorm_backward(a.dpost, a.dx, L.f_out, W.ln_post_ffn.data(), L.rstd_pf, N, D);
      d_down = a.dpost;
    }
    proj_backward(be, a.dh, d_down, L.h, W.wdown, lw, opt, l, Proj::Down, L.u(Proj::Down), N, no);
    if (c.mlp_act == MlpAct::gelu_tanh) {
      be.geglu_backward(a.dgate, a.dup, a.dh, L.gate, L.up, N * F);
    } else {
      be.swiglu_backward(a.dgate, a.dup, a.dh, L.gate, L.up, N * F);
    }
    if (c.fused_proj) {  // gate and up gradients back into gate_up_proj's columns
      be.copy_columns(a.dfused, 2 * F, a.dgate, F, N, F, no);
      be.copy_columns(a.dfused + F, 2 * F, a.dup, F, N, F, no);
      proj_backward(be, a.dln, a.dfused, L.ln2, W.wgate_up, lw, opt, l, Proj::GateUp, L.u(Proj::GateUp), N, no);
    } else {
      proj_backward(be, a.dln, a.dgate, L.ln2, W.wgate, lw, opt, l, Proj::Gate, L.u(Proj::Gate), N, no);
      proj_backward(be, a.dln, a.dup, L.ln2, W.wup, lw, opt, l, Proj::Up, L.u(Proj::Up), N, yes);
    }
    be.rmsnorm_backward(a.dx, a.dln, L.x_mid, W.ln2.data(), L.rstd2, N, D);  // dx: dL/dx_mid
    // attention: x_mid = x_in + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1))), Gemma: + norm(o(...))
    const float* d_o = a.dx;
    if (c.sandwich_norms) {
      be.fill(a.dpost, 0.0f, N * D);
      be.rmsnorm_backward(a.dpost, a.dx, L.o_out, W.ln_post_attn.data(), L.rstd_pa, N, D);
      d_o = a.dpost;
    }
    proj_backward(be, a.datt, d_o, L.att, W.wo, lw, opt, l, Proj::O, L.u(Proj::O), N, no);
    be.attention_backward(a.dq, a.dk, a.dv, a.datt, L.q, L.k, L.v, L.att, L.lse, a.seg_start, shape);
    be.rope_backward(a.dq, a.pos, rope, N, c.n_head, c.head_dim);
    be.rope_backward(a.dk, a.pos, rope, N, c.n_head_kv, c.head_dim);
    float *dq = a.dq, *dk = a.dk;
    if (c.qk_norm) {  // through the per-head norms: dq, dk become the projections' gradients
      be.fill(a.dq_raw, 0.0f, N * c.q_dim());
      be.fill(a.dk_raw, 0.0f, N * c.kv_dim());
      be.rmsnorm_backward(a.dq_raw, a.dq, L.q_raw, W.q_norm.data(), L.rstd_q, N * c.n_head, c.head_dim);
      be.rmsnorm_backward(a.dk_raw, a.dk, L.k_raw, W.k_norm.data(), L.rstd_k, N * c.n_head_kv, c.head_dim);
      dq = a.dq_raw, dk = a.dk_raw;
    }
    if (c.fused_proj) {  // q, k, v gradients back into qkv_proj's columns
      const int64_t Q = c.q_dim(), KV = c.kv_dim(), QKV = Q + 2 * KV;
      be.copy_columns(a.dfused, QKV, dq, Q, N, Q, no);
      be.copy_columns(a.dfused + Q, QKV, dk, KV, N, KV, no);
      be.copy_columns(a.dfused + Q + KV, QKV, a.dv, KV, N, KV, no);
      proj_backward(be, a.dln, a.dfused, L.ln1, W.wqkv, lw, opt, l, Proj::QKV, L.u(Proj::QKV), N, no);
    } else {
      proj_backward(be, a.dln, dq, L.ln1, W.wq, lw, opt, l, Proj::Q, L.u(Proj::Q), N, no);
      proj_backward(be, a.dln, dk, L.ln1, W.wk, lw, opt, l, Proj::K, L.u(Proj::K), N, yes);
      proj_backward(be, a.dln, a.dv, L.ln1, W.wv, lw, opt, l, Proj::V, L.u(Proj::V), N, yes);
    }
    be.rmsnorm_backward(a.dx, a.dln, L.x_in, W.ln1.data(), L.rstd1, N, D);  // dx: dL/dx_in
  }

  // The trained embedding copy (modules_to_save): x_in = embed_scale·E[token] (+ NEFTune's
  // additive noise, which has no gradient), so dE[token] += embed_scale·dx.
  if (float* dE = lw.dembed()) {
    if (c.embed_scale > 0.0) be.scale(a.dx, N * D, float(c.embed_scale));
    be.embedding_backward(dE, a.dx, a.tokens, N, D);
  }
}

}  // namespace tpro
