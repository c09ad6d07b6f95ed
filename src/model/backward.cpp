// Backward pass: the forward in reverse, from dL/d(final norm) to the LoRA gradients.
// Frozen weights get no gradient; each projection yields dx (and dA, dB where adapted).
#include <algorithm>

#include "core/error.h"
#include "model/step.h"

namespace tpro {

namespace {

// dinp (N, I) (+)= dout·W (+ LoRA path); dA, dB += when the projection has an adapter.
// inp16: the saved bf16 copy of inp or null; dout is rounded into a.dout_16 when W computes in
// bf16 and the activations hold bf16 copies.
void proj_backward(const Backend& be, Activations& a, float* dinp, const float* dout, const float* inp,
                   const uint16_t* inp16, const WeightMatrix& W, LoraWeights& lw, const StepOptions& opt,
                   int64_t layer, Proj p, const float* u, int64_t N, bool accumulate) {
  const uint16_t* dout16 = bf16_copy(be, W.bf16_compute, a.dout_16, dout, N * W.rows);
  if (!W.bf16_compute) inp16 = nullptr;
  be.linear_backward(dinp, dout, W, N, accumulate, dout16);
  const LoraSlot* s = lw.find(layer, p);
  if (!s) return;
  be.lora_backward(dinp, lw.grads.data() + s->a, lw.grads.data() + s->b, dout, inp, u, lw.params.data() + s->a,
                   lw.params.data() + s->b, float(lw.cfg.scale()), lora_dropout_for(lw, opt, layer, p), N, s->in,
                   s->out, lw.cfg.r, dout16, inp16);
}

}  // namespace

void backward(const Model& m, LoraWeights& lw, Activations& a, const StepInputs& in, const StepOptions& opt,
              const Backend& be) {
  const LlamaConfig& c = m.cfg;
  TPRO_CHECK(opt.train, "backward() after an evaluation forward");
  const int64_t N = in.B * in.T, D = c.n_embd, F = c.n_ff;
  const int32_t* pos = in.pos ? in.pos : a.pos_default.data();

  // a.dln holds dL/dlnf from the fused head; dx becomes dL/d(residual stream).
  std::fill(a.dx, a.dx + N * D, 0.0f);
  be.rmsnorm_backward(a.dx, a.dln, a.x_out, m.norm.data(), a.rstdf, N, D);

  for (int64_t l = c.n_layer - 1; l >= 0; --l) {
    check_cancel(opt.cancel, "running layer ", l, " of a backward pass");
    // Recomputation: the layers share one set of buffers; refill it from the saved input.
    if (a.recompute) layer_forward(m, &lw, a, l, in, opt, be, a.x_scratch);
    LayerActs& L = a.layers[size_t(l)];
    const LayerWeights& W = m.layers[size_t(l)];
    const AttnShape shape = layer_attn_shape(c, in, layer_computes_bf16(W));
    // MLP: x_out = x_mid + down(silu(gate(ln2)) · up(ln2))
    proj_backward(be, a, a.dh, a.dx, L.h, L.h_16, W.wdown, lw, opt, l, Proj::Down, L.lora_u[6], N, false);
    be.swiglu_backward(a.dgate, a.dup, a.dh, L.gate, L.up, N * F);
    proj_backward(be, a, a.dln, a.dgate, L.ln2, L.ln2_16, W.wgate, lw, opt, l, Proj::Gate, L.lora_u[4], N, false);
    proj_backward(be, a, a.dln, a.dup, L.ln2, L.ln2_16, W.wup, lw, opt, l, Proj::Up, L.lora_u[5], N, true);
    be.rmsnorm_backward(a.dx, a.dln, L.x_mid, W.ln2.data(), L.rstd2, N, D);  // dx: dL/dx_mid
    // attention: x_mid = x_in + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1)))
    proj_backward(be, a, a.datt, a.dx, L.att, L.att_16, W.wo, lw, opt, l, Proj::O, L.lora_u[3], N, false);
    be.attention_backward(a.dq, a.dk, a.dv, a.datt, L.q, L.k, L.v, L.att, L.lse, in.seg_start, shape);
    be.rope_forward(a.dq, pos, a.rope, N, c.n_head, c.head_dim, true);
    be.rope_forward(a.dk, pos, a.rope, N, c.n_head_kv, c.head_dim, true);
    proj_backward(be, a, a.dln, a.dq, L.ln1, L.ln1_16, W.wq, lw, opt, l, Proj::Q, L.lora_u[0], N, false);
    proj_backward(be, a, a.dln, a.dk, L.ln1, L.ln1_16, W.wk, lw, opt, l, Proj::K, L.lora_u[1], N, true);
    proj_backward(be, a, a.dln, a.dv, L.ln1, L.ln1_16, W.wv, lw, opt, l, Proj::V, L.lora_u[2], N, true);
    be.rmsnorm_backward(a.dx, a.dln, L.x_in, W.ln1.data(), L.rstd1, N, D);  // dx: dL/dx_in
  }
}

}  // namespace tpro
