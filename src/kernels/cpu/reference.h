// Scalar reference ops, templated on the float type: the oracle that the gradient checks
// (in double) prove against finite differences and that the fast kernels are tested against.
// Written for clarity, not speed; every op's maths is stated above its forward, and its
// backward sits right below. Legend: B batch, T tokens, N = B*T rows, D model dim, F FFN dim,
// H/Hkv heads, Dh head dim, V vocab, R LoRA rank, I/O in/out features of a projection.
// Accumulation contract: parameter grads +=, activation grads = (except where noted +=).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace tpro::ref {

// ---- linear: out = inp·Wᵀ + bias --------------------------------------------------------
template <typename T>
void linear_forward(T* out, const T* inp, const T* W, const T* bias, int64_t N, int64_t I, int64_t O) {
  // out (N,O), inp (N,I), W (O,I), bias (O) or null
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      T acc = bias ? bias[o] : T(0);
      for (int64_t i = 0; i < I; ++i) acc += inp[n * I + i] * W[o * I + i];
      out[n * O + o] = acc;
    }
}
// dinp (N,I) += dout·W. W is frozen: no dW, no dbias.
template <typename T>
void linear_backward(T* dinp, const T* dout, const T* W, int64_t N, int64_t I, int64_t O) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      T acc = 0;
      for (int64_t o = 0; o < O; ++o) acc += dout[n * O + o] * W[o * I + i];
      dinp[n * I + i] += acc;
    }
}

// ---- LoRA: out += s·(keep ⊙ inp)·Aᵀ·Bᵀ ---------------------------------------------------
// keep (N,I) is the dropout multiplier (0 or 1/(1-p)), or null for no dropout. Saves u (N,R).
template <typename T>
void lora_forward(T* out, T* u, const T* inp, const T* keep, const T* A, const T* B, T s, int64_t N,
                  int64_t I, int64_t O, int64_t R) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t r = 0; r < R; ++r) {
      T acc = 0;
      for (int64_t i = 0; i < I; ++i) acc += inp[n * I + i] * (keep ? keep[n * I + i] : T(1)) * A[r * I + i];
      u[n * R + r] = acc;
    }
    for (int64_t o = 0; o < O; ++o) {
      T acc = 0;
      for (int64_t r = 0; r < R; ++r) acc += u[n * R + r] * B[o * R + r];
      out[n * O + o] += s * acc;
    }
  }
}
// dinp (N,I) +=, dA (R,I) +=, dB (O,R) +=.
template <typename T>
void lora_backward(T* dinp, T* dA, T* dB, const T* dout, const T* inp, const T* keep, const T* u, const T* A,
                   const T* B, T s, int64_t N, int64_t I, int64_t O, int64_t R) {
  std::vector<T> du(R);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t r = 0; r < R; ++r) {
      T acc = 0;
      for (int64_t o = 0; o < O; ++o) {
        acc += dout[n * O + o] * B[o * R + r];
        dB[o * R + r] += s * dout[n * O + o] * u[n * R + r];
      }
      du[r] = s * acc;
    }
    for (int64_t i = 0; i < I; ++i) {
      T k = keep ? keep[n * I + i] : T(1);
      T acc = 0;
      for (int64_t r = 0; r < R; ++r) {
        acc += du[r] * A[r * I + i];
        dA[r * I + i] += du[r] * inp[n * I + i] * k;
      }
      dinp[n * I + i] += acc * k;
    }
  }
}

// ---- DoRA (Liu et al. 2024; PEFT's DoraLinearLayer) ----------------------------------------
// wn (O) = ‖W + s·B·A‖ over each row: the weight norm, which the gradient treats as a constant.
template <typename T>
void dora_weight_norm(T* wn, const T* W, const T* A, const T* B, T s, int64_t I, int64_t O, int64_t R) {
  for (int64_t o = 0; o < O; ++o) {
    T ss = 0;
    for (int64_t i = 0; i < I; ++i) {
      T v = W[o * I + i];
      for (int64_t r = 0; r < R; ++r) v += s * B[o * R + r] * A[r * I + i];
      ss += v * v;
    }
    wn[o] = std::sqrt(ss);
  }
}
// out (N,O) = inp·Wᵀ + bias + (g − 1)⊙(xd·Wᵀ) + g⊙s·xd·Aᵀ·Bᵀ with g = mag/wn and xd = keep⊙inp
// (keep null: xd = inp); wn (O) is an input, held constant. Saves u (N,R) = xd·Aᵀ.
template <typename T>
void dora_forward(T* out, T* u, const T* inp, const T* keep, const T* W, const T* bias, const T* A, const T* B,
                  const T* mag, const T* wn, T s, int64_t N, int64_t I, int64_t O, int64_t R) {
  std::vector<T> xd(size_t(N * I)), base(size_t(N * O)), lora(size_t(N * O), T(0));
  for (int64_t k = 0; k < N * I; ++k) xd[k] = inp[k] * (keep ? keep[k] : T(1));
  linear_forward(out, inp, W, bias, N, I, O);
  linear_forward(base.data(), xd.data(), W, static_cast<const T*>(nullptr), N, I, O);
  lora_forward(lora.data(), u, inp, keep, A, B, s, N, I, O, R);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      const T g = mag[o] / wn[o];
      out[n * O + o] += (g - T(1)) * base[n * O + o] + g * lora[n * O + o];
    }
}
// dinp (N,I) +=, dA (R,I) +=, dB (O,R) +=, dmag (O) += Σ_n dout ⊙ (xd·Wᵀ + s·u·Bᵀ) / wn.
template <typename T>
void dora_backward(T* dinp, T* dA, T* dB, T* dmag, const T* dout, const T* inp, const T* keep, const T* u,
                   const T* W, const T* A, const T* B, const T* mag, const T* wn, T s, int64_t N, int64_t I,
                   int64_t O, int64_t R) {
  std::vector<T> xd(size_t(N * I)), base(size_t(N * O)), gdy(size_t(N * O)), hdy(size_t(N * O));
  std::vector<T> dxd(size_t(N * I), T(0));
  for (int64_t k = 0; k < N * I; ++k) xd[k] = inp[k] * (keep ? keep[k] : T(1));
  linear_forward(base.data(), xd.data(), W, static_cast<const T*>(nullptr), N, I, O);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      T l = 0;
      for (int64_t r = 0; r < R; ++r) l += u[n * R + r] * B[o * R + r];
      const T g = mag[o] / wn[o], dy = dout[n * O + o];
      dmag[o] += dy * (base[n * O + o] + s * l) / wn[o];
      gdy[n * O + o] = g * dy;
      hdy[n * O + o] = (g - T(1)) * dy;
    }
  linear_backward(dinp, dout, W, N, I, O);                // the base on the undropped input
  linear_backward(dxd.data(), hdy.data(), W, N, I, O);    // (g − 1)⊙(xd·Wᵀ), through the dropout
  for (int64_t k = 0; k < N * I; ++k) dinp[k] += dxd[k] * (keep ? keep[k] : T(1));
  lora_backward(dinp, dA, dB, gdy.data(), inp, keep, u, A, B, s, N, I, O, R);
}

// ---- RMSNorm (HF Llama): out = w ⊙ x / sqrt(mean(x²) + eps) --------------------------------
template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, T eps, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    T ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += inp[n * D + d] * inp[n * D + d];
    T r = T(1) / std::sqrt(ss / T(D) + eps);
    rstd[n] = r;
    for (int64_t d = 0; d < D; ++d) out[n * D + d] = inp[n * D + d] * r * w[d];
  }
}
// dinp (N,D) += r·(w⊙dout) − r³/D · x · Σ(w⊙dout⊙x). Weight frozen: no dw.
template <typename T>
void rmsnorm_backward(T* dinp, const T* dout, const T* inp, const T* w, const T* rstd, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    T r = rstd[n], dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += w[d] * dout[n * D + d] * inp[n * D + d];
    for (int64_t d = 0; d < D; ++d)
      dinp[n * D + d] += r * w[d] * dout[n * D + d] - r * r * r / T(D) * inp[n * D + d] * dot;
  }
}

// ---- RoPE, HF "rotate_half" layout: pairs (j, j + rot/2) rotate by angle pos·inv_freq[j] ------
// x (N, H, Dh) in place; pos (N); the first rot dims of each head rotate (rot 0 = Dh), the rest
// pass through (partial rotary); cos and sin are scaled by mscale (LongRoPE / YaRN attention
// factor). Backward is the transpose: the angle negated, the same scale.
template <typename T>
void rope_forward(T* x, const int32_t* pos, const float* inv_freq, int64_t N, int64_t H, int64_t Dh,
                  bool inverse = false, int64_t rot = 0, double mscale = 1.0) {
  int64_t half = (rot ? rot : Dh) / 2;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < half; ++j) {
      double ang = double(pos[n]) * double(inv_freq[j]);
      T c = T(std::cos(ang) * mscale), s = T((inverse ? -std::sin(ang) : std::sin(ang)) * mscale);
      for (int64_t h = 0; h < H; ++h) {
        T* p = x + (n * H + h) * Dh;
        T a = p[j], b = p[j + half];
        p[j] = a * c - b * s;
        p[j + half] = b * c + a * s;
      }
    }
}
template <typename T>
void rope_backward(T* dx, const int32_t* pos, const float* inv_freq, int64_t N, int64_t H, int64_t Dh,
                   int64_t rot = 0, double mscale = 1.0) {
  rope_forward(dx, pos, inv_freq, N, H, Dh, /*inverse=*/true, rot, mscale);
}

// ---- causal grouped-query attention -------------------------------------------------------
// q (B,T,H,Dh), k,v (B,T,Hkv,Dh), out (B,T,H,Dh), lse (B,H,T) = log Σ_j exp(s_ij).
// Query head h reads kv head h / (H/Hkv). Token t attends j in [lo(t), t] where lo(t) is
// seg_start[b,t] (packed documents) or 0, and at least t - window + 1 when window > 0.
// Scores s_ij = c·tanh(scale·q_i·k_j / c) with soft-cap c > 0 (Gemma 2), else scale·q_i·k_j;
// scale 0 means 1/√Dh.
inline int64_t attn_lo(const int32_t* seg_start, int64_t b, int64_t t, int64_t T_, int64_t window) {
  int64_t lo = seg_start ? seg_start[b * T_ + t] : 0;
  if (window > 0) lo = std::max(lo, t - window + 1);
  return lo;
}
template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const int32_t* seg_start, int64_t B,
                       int64_t T_, int64_t H, int64_t Hkv, int64_t Dh, int64_t window = 0, T scale = 0,
                       T softcap = 0) {
  if (scale == T(0)) scale = T(1) / std::sqrt(T(Dh));
  const int64_t g = H / Hkv;
  std::vector<T> s(T_);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T_; ++t) {
        const T* qt = q + ((b * T_ + t) * H + h) * Dh;
        int64_t lo = attn_lo(seg_start, b, t, T_, window);
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t j = lo; j <= t; ++j) {
          const T* kj = k + ((b * T_ + j) * Hkv + h / g) * Dh;
          T acc = 0;
          for (int64_t d = 0; d < Dh; ++d) acc += qt[d] * kj[d];
          s[j] = acc * scale;
          if (softcap > T(0)) s[j] = softcap * std::tanh(s[j] / softcap);
          mx = std::max(mx, s[j]);
        }
        T sum = 0;
        for (int64_t j = lo; j <= t; ++j) sum += std::exp(s[j] - mx);
        lse[(b * H + h) * T_ + t] = mx + std::log(sum);
        T* ot = out + ((b * T_ + t) * H + h) * Dh;
        for (int64_t d = 0; d < Dh; ++d) ot[d] = 0;
        for (int64_t j = lo; j <= t; ++j) {
          T p = std::exp(s[j] - mx) / sum;
          const T* vj = v + ((b * T_ + j) * Hkv + h / g) * Dh;
          for (int64_t d = 0; d < Dh; ++d) ot[d] += p * vj[d];
        }
      }
}
// dq (B,T,H,Dh) =, dk, dv (B,T,Hkv,Dh) =. Recomputes P from lse (flash-attention style).
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, const int32_t* seg_start, int64_t B, int64_t T_, int64_t H, int64_t Hkv,
                        int64_t Dh, int64_t window = 0, T scale = 0, T softcap = 0) {
  if (scale == T(0)) scale = T(1) / std::sqrt(T(Dh));
  const int64_t g = H / Hkv;
  std::fill(dq, dq + B * T_ * H * Dh, T(0));
  std::fill(dk, dk + B * T_ * Hkv * Dh, T(0));
  std::fill(dv, dv + B * T_ * Hkv * Dh, T(0));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T_; ++t) {
        const int64_t qi = ((b * T_ + t) * H + h) * Dh;
        int64_t lo = attn_lo(seg_start, b, t, T_, window);
        T L = lse[(b * H + h) * T_ + t], Dt = 0;
        for (int64_t d = 0; d < Dh; ++d) Dt += dout[qi + d] * out[qi + d];
        for (int64_t j = lo; j <= t; ++j) {
          const int64_t kj = ((b * T_ + j) * Hkv + h / g) * Dh;
          T sdot = 0, dp = 0;
          for (int64_t d = 0; d < Dh; ++d) {
            sdot += q[qi + d] * k[kj + d];
            dp += dout[qi + d] * v[kj + d];
          }
          T raw = sdot * scale, dcap = T(1);
          if (softcap > T(0)) {  // d(c·tanh(r/c))/dr = 1 − tanh²
            const T th = std::tanh(raw / softcap);
            raw = softcap * th;
            dcap = T(1) - th * th;
          }
          T p = std::exp(raw - L);
          T ds = p * (dp - Dt) * dcap;
          for (int64_t d = 0; d < Dh; ++d) {
            dq[qi + d] += scale * ds * k[kj + d];
            dk[kj + d] += scale * ds * q[qi + d];
            dv[kj + d] += p * dout[qi + d];
          }
        }
      }
}

// ---- SwiGLU: out = silu(gate) ⊙ up, silu(x) = x·σ(x) ----------------------------------------
template <typename T>
void swiglu_forward(T* out, const T* gate, const T* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T sg = T(1) / (T(1) + std::exp(-gate[i]));
    out[i] = gate[i] * sg * up[i];
  }
}
// dgate =, dup = (not accumulated).
template <typename T>
void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T sg = T(1) / (T(1) + std::exp(-gate[i]));
    dup[i] = dout[i] * gate[i] * sg;
    dgate[i] = dout[i] * up[i] * sg * (T(1) + gate[i] * (T(1) - sg));
  }
}

// ---- GeGLU: out = gelu_tanh(gate) ⊙ up, gelu_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) ----
template <typename T>
void geglu_forward(T* out, const T* gate, const T* up, int64_t n) {
  const T c = std::sqrt(T(2) / T(M_PI));
  for (int64_t i = 0; i < n; ++i) {
    const T x = gate[i];
    out[i] = T(0.5) * x * (T(1) + std::tanh(c * (x + T(0.044715) * x * x * x))) * up[i];
  }
}
// dgate =, dup =.
template <typename T>
void geglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  const T c = std::sqrt(T(2) / T(M_PI));
  for (int64_t i = 0; i < n; ++i) {
    const T x = gate[i], t = std::tanh(c * (x + T(0.044715) * x * x * x));
    dup[i] = dout[i] * T(0.5) * x * (T(1) + t);
    dgate[i] = dout[i] * up[i] * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * c * (T(1) + T(3) * T(0.044715) * x * x));
  }
}

// ---- soft-capping: y = c·tanh(x/c) -------------------------------------------------------------
template <typename T>
void softcap_forward(T* y, const T* x, int64_t n, T c) {
  for (int64_t i = 0; i < n; ++i) y[i] = c * std::tanh(x[i] / c);
}

// ---- masked cross-entropy over logits ------------------------------------------------------
// logits (N,V), targets (N) (-1 = not trained), weight (N): the loss multiplier per row,
// usually mask / n_trained across the whole accumulated batch. Returns Σ weight·(−log p_target).
template <typename T>
T cross_entropy_forward(const T* logits, const int32_t* targets, const T* weight, int64_t N, int64_t V,
                        T softcap = 0) {
  T total = 0;
  std::vector<T> capped(size_t(softcap > T(0) ? V : 0));
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0 || weight[n] == T(0)) continue;
    const T* l = logits + n * V;
    if (softcap > T(0)) softcap_forward(capped.data(), l, V, softcap), l = capped.data();
    T mx = *std::max_element(l, l + V), sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(l[j] - mx);
    total += weight[n] * (mx + std::log(sum) - l[targets[n]]);
  }
  return total;
}
// dlogits (N,V) = weight·(softmax − onehot) (times 1 − tanh² of the cap when soft-capped).
template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const int32_t* targets, const T* weight, int64_t N,
                            int64_t V, T softcap = 0) {
  std::vector<T> capped(size_t(softcap > T(0) ? V : 0));
  for (int64_t n = 0; n < N; ++n) {
    T* dl = dlogits + n * V;
    if (targets[n] < 0 || weight[n] == T(0)) {
      std::fill(dl, dl + V, T(0));
      continue;
    }
    const T* raw = logits + n * V;
    const T* l = raw;
    if (softcap > T(0)) softcap_forward(capped.data(), raw, V, softcap), l = capped.data();
    T mx = *std::max_element(l, l + V), sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(l[j] - mx);
    for (int64_t j = 0; j < V; ++j) dl[j] = weight[n] * std::exp(l[j] - mx) / sum;
    dl[targets[n]] -= weight[n];
    if (softcap > T(0))
      for (int64_t j = 0; j < V; ++j) dl[j] *= T(1) - (l[j] / softcap) * (l[j] / softcap);
  }
}

}  // namespace tpro::ref
