// RMSNorm, RoPE, SwiGLU and embedding kernels; see norm_rope_swiglu.h.
#include "kernels/cpu/norm_rope_swiglu.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/linear.h"

namespace tpro {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* w, float eps, int64_t N, int64_t D) {
#pragma omp parallel for if (worth_parallel(N * D))
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * D;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t d = 0; d < D; ++d) ss += x[d] * x[d];
    const float r = 1.0f / std::sqrt(ss / float(D) + eps);
    rstd[n] = r;
    float* o = out + n * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) o[d] = x[d] * r * w[d];
  }
}

void rmsnorm_backward(float* dinp, const float* dout, const float* inp, const float* w, const float* rstd, int64_t N,
                      int64_t D) {
#pragma omp parallel for if (worth_parallel(N * D))
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * D;
    const float* dy = dout + n * D;
    const float r = rstd[n];
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t d = 0; d < D; ++d) dot += w[d] * dy[d] * x[d];
    const float c = r * r * r / float(D) * dot;
    float* dx = dinp + n * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) dx[d] += r * w[d] * dy[d] - c * x[d];
  }
}

void rope_table_build(float* cos, float* sin, const float* inv_freq, int64_t half, int64_t n_pos, float mscale) {
  for (int64_t p = 0; p < n_pos; ++p)
    for (int64_t j = 0; j < half; ++j) {
      double a = double(p) * double(inv_freq[j]);
      // as transformers: cos/sin in f32, then times the attention factor in f32
      cos[p * half + j] = float(std::cos(a)) * mscale;
      sin[p * half + j] = float(std::sin(a)) * mscale;
    }
}

namespace {
void rope_rotate(float* x, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh, bool inverse) {
  const int64_t half = rt.half;  // rotary dims 2·half ≤ Dh; the others pass through
  TPRO_CHECK(half > 0 && 2 * half <= Dh, "rope table built for ", 2 * rt.half, " rotary dims, used with head dim ", Dh);
  const float sgn = inverse ? -1.0f : 1.0f;
#pragma omp parallel for if (worth_parallel(N * H * Dh))
  for (int64_t n = 0; n < N; ++n) {
    TPRO_CHECK(pos[n] >= 0 && pos[n] < rt.n_pos, "position ", pos[n], " outside rope table of ", rt.n_pos);
    const float* c = rt.cos + int64_t(pos[n]) * half;
    const float* s = rt.sin + int64_t(pos[n]) * half;
    for (int64_t h = 0; h < H; ++h) {
      float* p = x + (n * H + h) * Dh;
#pragma omp simd
      for (int64_t j = 0; j < half; ++j) {
        const float a = p[j], b = p[j + half], sj = sgn * s[j];
        p[j] = a * c[j] - b * sj;
        p[j + half] = b * c[j] + a * sj;
      }
    }
  }
}

}  // namespace

void rope_forward(float* x, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh) {
  rope_rotate(x, pos, rt, N, H, Dh, /*inverse=*/false);
}
void rope_backward(float* dx, const int32_t* pos, const RopeTable& rt, int64_t N, int64_t H, int64_t Dh) {
  rope_rotate(dx, pos, rt, N, H, Dh, /*inverse=*/true);
}

void embedding_backward(float* dE, const float* dout, const int32_t* tokens, int64_t N, int64_t D) {
  // Rows may repeat a token: sequential over rows, vectorised over D.
  for (int64_t n = 0; n < N; ++n) {
    float* e = dE + int64_t(tokens[n]) * D;
    const float* g = dout + n * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) e[d] += g[d];
  }
}

namespace {
constexpr int64_t kChunk = 4096;  // elements per task: fits L1 with the three streams
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for if (worth_parallel(n))
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t m = std::min(kChunk, n - c);
    float* o = out + c;
    const float* g = gate + c;
    const float* u = up + c;
    sigmoid(o, g, m);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) o[i] *= g[i] * u[i];
  }
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for if (worth_parallel(n))
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t m = std::min(kChunk, n - c);
    float* dg = dgate + c;
    float* du = dup + c;
    const float* g = gate + c;
    const float* u = up + c;
    const float* dy = dout + c;
    sigmoid(dg, g, m);  // dg holds σ(g) until overwritten below
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) {
      const float sg = dg[i];
      du[i] = dy[i] * g[i] * sg;
      dg[i] = dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
  }
}

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f, kGeluC = 0.044715f;
}  // namespace

void geglu_forward(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float t = std::tanh(kSqrt2OverPi * (g + kGeluC * g * g * g));
    out[i] = 0.5f * g * (1.0f + t) * up[i];
  }
}

void geglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float t = std::tanh(kSqrt2OverPi * (g + kGeluC * g * g * g));
    const float gelu = 0.5f * g * (1.0f + t);
    // d gelu/dg = ½(1 + t) + ½·g·(1 − t²)·√(2/π)·(1 + 3c·g²)
    const float dgelu = 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * g * g);
    dup[i] = dout[i] * gelu;
    dgate[i] = dout[i] * up[i] * dgelu;
  }
}

void softcap_inplace(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
#pragma omp parallel for if (worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

void embedding_forward(float* out, const int32_t* tokens, const WeightMatrix& emb, int64_t N) {
#pragma omp parallel for if (worth_parallel(N * emb.cols))
  for (int64_t n = 0; n < N; ++n) {
    TPRO_CHECK(tokens[n] >= 0 && tokens[n] < emb.rows, "token id ", tokens[n], " outside vocabulary of ", emb.rows);
    weight_rows_f32(emb, tokens[n], 1, out + n * emb.cols);
  }
}

}  // namespace tpro
