// Blocked causal attention on SGEMM tiles; see attention.h.
#include "kernels/cpu/attention.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/gemm.h"

namespace tpro {

namespace {
constexpr int64_t kQBlock = 64;

float* thread_scratch(size_t n, int which) {
  thread_local std::vector<float> buf[2];
  if (buf[which].size() < n) buf[which].resize(n);
  return buf[which].data();
}

// Keys visible to query row t (absolute position a): [lo, a].
inline int64_t row_lo(const int32_t* seg_start, const AttnShape& s, int64_t b, int64_t t, int64_t a) {
  int64_t lo = seg_start ? seg_start[b * s.Tq + t] : 0;
  if (s.window > 0) lo = std::max(lo, a - s.window + 1);
  return lo;
}

struct Block {
  int64_t t0, nq, jlo, nk, off;
};

Block block_range(const int32_t* seg_start, const AttnShape& s, int64_t b, int64_t qb) {
  Block bl;
  bl.off = s.Tk - s.Tq;
  bl.t0 = qb * kQBlock;
  bl.nq = std::min(kQBlock, s.Tq - bl.t0);
  int64_t jlo = bl.t0 + bl.off;
  for (int64_t t = bl.t0; t < bl.t0 + bl.nq; ++t) jlo = std::min(jlo, row_lo(seg_start, s, b, t, t + bl.off));
  bl.jlo = jlo;
  bl.nk = bl.t0 + bl.nq + bl.off - jlo;
  return bl;
}

// S (nq, nk) in place -> P, with masked entries exactly 0; writes lse per row when asked.
void masked_softmax(float* S, float* lse_row, const int32_t* seg_start, const AttnShape& s, int64_t b,
                    const Block& bl) {
  for (int64_t i = 0; i < bl.nq; ++i) {
    const int64_t t = bl.t0 + i, a = t + bl.off;
    const int64_t lo = row_lo(seg_start, s, b, t, a) - bl.jlo, hi = a - bl.jlo;  // inclusive
    float* row = S + i * bl.nk;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = lo; j <= hi; ++j) mx = std::max(mx, row[j]);
    std::fill(row, row + lo, 0.0f);
    std::fill(row + hi + 1, row + bl.nk, 0.0f);
    const double sum = exp_shift_sum(row + lo, row + lo, hi - lo + 1, -mx);
    const float inv = float(1.0 / sum);
    for (int64_t j = lo; j <= hi; ++j) row[j] *= inv;
    if (lse_row) lse_row[t] = mx + float(std::log(sum));
  }
}
}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const int32_t* seg_start, const AttnShape& s, int64_t kv_stride) {
  TPRO_CHECK(s.H % s.Hkv == 0, "H ", s.H, " not a multiple of Hkv ", s.Hkv);
  TPRO_CHECK(s.Tk >= s.Tq, "fewer keys than queries");
  const int64_t g = s.H / s.Hkv, ldq = s.H * s.Dh, ldk = kv_stride ? kv_stride : s.Hkv * s.Dh;
  const int64_t kv_batch = s.Tk * ldk;
  const float scale = 1.0f / std::sqrt(float(s.Dh));
  const int64_t nqb = (s.Tq + kQBlock - 1) / kQBlock;
  const int64_t tasks = s.B * s.H * nqb;
#pragma omp parallel for schedule(dynamic) if (worth_parallel(s.B * s.H * s.Tq * s.Tk * s.Dh / 2))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t qb = task % nqb, h = (task / nqb) % s.H, b = task / (nqb * s.H);
    const Block bl = block_range(seg_start, s, b, qb);
    const float* Q = q + (b * s.Tq + bl.t0) * ldq + h * s.Dh;
    const float* K = k + b * kv_batch + bl.jlo * ldk + (h / g) * s.Dh;
    const float* V = v + b * kv_batch + bl.jlo * ldk + (h / g) * s.Dh;
    float* S = thread_scratch(size_t(bl.nq * bl.nk), 0);
    sgemm(false, true, bl.nq, bl.nk, s.Dh, scale, Q, ldq, K, ldk, 0.0f, S, bl.nk);
    masked_softmax(S, lse ? lse + (b * s.H + h) * s.Tq : nullptr, seg_start, s, b, bl);
    sgemm(false, false, bl.nq, s.Dh, bl.nk, 1.0f, S, bl.nk, V, ldk, 0.0f, out + (b * s.Tq + bl.t0) * ldq + h * s.Dh,
          ldq);
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* seg_start,
                        const AttnShape& s) {
  TPRO_CHECK(s.Tq == s.Tk, "attention backward needs Tq == Tk");
  const int64_t T = s.Tq, g = s.H / s.Hkv, ldq = s.H * s.Dh, ldk = s.Hkv * s.Dh;
  const float scale = 1.0f / std::sqrt(float(s.Dh));
  const int64_t nqb = (T + kQBlock - 1) / kQBlock;
  // Per query head dK, dV (B,H,T,Dh), summed over each kv group at the end (no races).
  thread_local std::vector<float> dkh_buf, dvh_buf;
  const size_t per = size_t(s.B * s.H * T * s.Dh);
  if (dkh_buf.size() < per) dkh_buf.resize(per), dvh_buf.resize(per);
  float* dkh = dkh_buf.data();
  float* dvh = dvh_buf.data();
#pragma omp parallel for schedule(dynamic) if (worth_parallel(s.B * s.H * T * T * s.Dh))
  for (int64_t task = 0; task < s.B * s.H; ++task) {
    const int64_t h = task % s.H, b = task / s.H;
    float* dK = dkh + task * T * s.Dh;
    float* dV = dvh + task * T * s.Dh;
    std::fill(dK, dK + T * s.Dh, 0.0f);
    std::fill(dV, dV + T * s.Dh, 0.0f);
    for (int64_t qb = 0; qb < nqb; ++qb) {
      const Block bl = block_range(seg_start, s, b, qb);
      const int64_t qoff = (b * T + bl.t0) * ldq + h * s.Dh;
      const float* K = k + (b * T + bl.jlo) * ldk + (h / g) * s.Dh;
      const float* V = v + (b * T + bl.jlo) * ldk + (h / g) * s.Dh;
      float* P = thread_scratch(size_t(bl.nq * bl.nk), 0);
      float* dP = thread_scratch(size_t(bl.nq * bl.nk), 1);
      sgemm(false, true, bl.nq, bl.nk, s.Dh, scale, q + qoff, ldq, K, ldk, 0.0f, P, bl.nk);
      // P = exp(S − lse) on the visible keys, 0 elsewhere.
      for (int64_t i = 0; i < bl.nq; ++i) {
        const int64_t t = bl.t0 + i;
        const int64_t lo = row_lo(seg_start, s, b, t, t) - bl.jlo, hi = t - bl.jlo;
        const float L = lse[(b * s.H + h) * T + t];
        float* row = P + i * bl.nk;
        std::fill(row, row + lo, 0.0f);
        std::fill(row + hi + 1, row + bl.nk, 0.0f);
        exp_shift_sum(row + lo, row + lo, hi - lo + 1, -L);
      }
      sgemm(false, true, bl.nq, bl.nk, s.Dh, 1.0f, dout + qoff, ldq, V, ldk, 0.0f, dP, bl.nk);  // dP = dO·Vᵀ
      for (int64_t i = 0; i < bl.nq; ++i) {  // dS = P ⊙ (dP − rowsum(dO ⊙ O)), stored in dP
        const float* o = out + qoff + i * ldq;
        const float* d = dout + qoff + i * ldq;
        float Di = 0.0f;
        for (int64_t e = 0; e < s.Dh; ++e) Di += o[e] * d[e];
        float* prow = P + i * bl.nk;
        float* drow = dP + i * bl.nk;
        for (int64_t j = 0; j < bl.nk; ++j) drow[j] = prow[j] * (drow[j] - Di);
      }
      sgemm(false, false, bl.nq, s.Dh, bl.nk, scale, dP, bl.nk, K, ldk, 0.0f, dq + qoff, ldq);      // dQ
      sgemm(true, false, bl.nk, s.Dh, bl.nq, scale, dP, bl.nk, q + qoff, ldq, 1.0f, dK + bl.jlo * s.Dh, s.Dh);
      sgemm(true, false, bl.nk, s.Dh, bl.nq, 1.0f, P, bl.nk, dout + qoff, ldq, 1.0f, dV + bl.jlo * s.Dh, s.Dh);
    }
  }
#pragma omp parallel for if (worth_parallel(s.B * T * s.H * s.Dh))
  for (int64_t bt = 0; bt < s.B * T; ++bt) {
    const int64_t b = bt / T, t = bt % T;
    for (int64_t kh = 0; kh < s.Hkv; ++kh) {
      float* dkr = dk + (bt * s.Hkv + kh) * s.Dh;
      float* dvr = dv + (bt * s.Hkv + kh) * s.Dh;
      std::fill(dkr, dkr + s.Dh, 0.0f);
      std::fill(dvr, dvr + s.Dh, 0.0f);
      for (int64_t h = kh * g; h < (kh + 1) * g; ++h) {
        const float* sk = dkh + ((b * s.H + h) * T + t) * s.Dh;
        const float* sv = dvh + ((b * s.H + h) * T + t) * s.Dh;
        for (int64_t e = 0; e < s.Dh; ++e) dkr[e] += sk[e], dvr[e] += sv[e];
      }
    }
  }
}

}  // namespace tpro
