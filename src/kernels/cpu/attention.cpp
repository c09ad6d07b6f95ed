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
  thread_local std::vector<float> buf[4];
  if (buf[which].size() < n) buf[which].resize(n);
  return buf[which].data();
}

// A tile operand: f32 with its row stride, or bf16 (head-major copy, row stride Dh).
struct Operand {
  const float* f = nullptr;
  const uint16_t* h = nullptr;
  int64_t ld = 0;
};

// C (M,N) = alpha·op(A)·op(B) + beta·C in the precision the operands carry.
void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, Operand A, Operand B, float beta, float* C,
        int64_t ldc) {
  if (A.h) {
    gemm_bf16(ta, tb, M, N, K, alpha, A.h, A.ld, B.h, B.ld, beta, C, ldc);
  } else {
    sgemm(ta, tb, M, N, K, alpha, A.f, A.ld, B.f, B.ld, beta, C, ldc);
  }
}

// One of q, k, v, dout: element (b, t, head, e) of the f32 tensor at f[(b·T + t)·ld + head·Dh
// + e]; in bf16 mode also a head-major (B, heads, T, Dh) bf16 copy.
struct Heads {
  const float* f;
  int64_t ld, T, n, Dh;
  const uint16_t* h = nullptr;
  // Rows t.. of one head as a tile operand.
  Operand at(int64_t b, int64_t head, int64_t t) const {
    if (h) return {nullptr, h + ((b * n + head) * T + t) * Dh, Dh};
    return {f + (b * T + t) * ld + head * Dh, nullptr, ld};
  }
};

// slot: one head-major buffer per tensor of a call (q, k, v, dout).
Heads make_heads(const float* x, int64_t B, int64_t T, int64_t n, int64_t Dh, int64_t ld, bool bf16, int slot) {
  Heads hs{x, ld, T, n, Dh};
  if (!bf16) return hs;
  static thread_local std::vector<uint16_t> buf[4];
  auto& dst = buf[slot];
  if (dst.size() < size_t(B * n * T * Dh)) dst.resize(size_t(B * n * T * Dh));
#pragma omp parallel for if (worth_parallel(B * T * n * Dh))
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const int64_t b = bt / T, t = bt % T;
    for (int64_t head = 0; head < n; ++head)
      convert_f32_to_bf16_here(x + bt * ld + head * Dh, dst.data() + ((b * n + head) * T + t) * Dh, Dh);
  }
  hs.h = dst.data();
  return hs;
}

// A block's (rows, cols) f32 matrix as an operand of the next product: itself, or rounded to
// bf16 into thread scratch.
Operand block_operand(const float* x, int64_t rows, int64_t cols, bool bf16, int which) {
  if (!bf16) return {x, nullptr, cols};
  thread_local std::vector<uint16_t> buf[2];
  if (buf[which].size() < size_t(rows * cols)) buf[which].resize(size_t(rows * cols));
  convert_f32_to_bf16_here(x, buf[which].data(), rows * cols);
  return {nullptr, buf[which].data(), cols};
}

// Where a product writes rows of a (.., ld) f32 tensor: in place, or (bf16 mode, whose dense
// kernels want a dense destination) a thread scratch copied out by finish().
struct RowsOut {
  float* dst;
  int64_t ld, rows, cols;
  float* tmp = nullptr;
  RowsOut(float* d, int64_t ld_, int64_t r, int64_t c, bool dense) : dst(d), ld(ld_), rows(r), cols(c) {
    if (dense) tmp = thread_scratch(size_t(r * c), 2);
  }
  float* c() const { return tmp ? tmp : dst; }
  int64_t ldc() const { return tmp ? cols : ld; }
  void finish() const {
    if (!tmp) return;
    for (int64_t i = 0; i < rows; ++i) std::copy(tmp + i * cols, tmp + (i + 1) * cols, dst + i * ld);
  }
};

// Keys visible to query row t (absolute position a): [lo, a].
inline int64_t row_lo(const int32_t* seg_start, const AttnShape& s, int64_t b, int64_t t, int64_t a) {
  int64_t lo = seg_start ? seg_start[b * s.Tq + t] : 0;
  if (s.window > 0) lo = std::max(lo, a - s.window + 1);
  return lo;
}

// Gemma 2's soft-capping of n scores in place: S = cap·tanh(S/cap); keeps tanh in t when given.
void softcap_scores(float* S, float* t, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) {
    const float th = std::tanh(S[i] * inv);
    if (t) t[i] = th;
    S[i] = cap * th;
  }
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
    const float mx = max_of(row + lo, hi - lo + 1);  // the diagonal is always visible: hi ≥ lo
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
  const float scale = s.score_scale();
  const int64_t nqb = (s.Tq + kQBlock - 1) / kQBlock;
  const int64_t tasks = s.B * s.H * nqb;
  const Heads Qh = make_heads(q, s.B, s.Tq, s.H, s.Dh, ldq, s.bf16, 0);
  const Heads Kh = make_heads(k, s.B, s.Tk, s.Hkv, s.Dh, ldk, s.bf16, 1);
  const Heads Vh = make_heads(v, s.B, s.Tk, s.Hkv, s.Dh, ldk, s.bf16, 2);
#pragma omp parallel for schedule(dynamic) if (worth_parallel(s.B * s.H * s.Tq * s.Tk * s.Dh / 2))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t qb = task % nqb, h = (task / nqb) % s.H, b = task / (nqb * s.H);
    const Block bl = block_range(seg_start, s, b, qb);
    float* S = thread_scratch(size_t(bl.nq * bl.nk), 0);
    mm(false, true, bl.nq, bl.nk, s.Dh, scale, Qh.at(b, h, bl.t0), Kh.at(b, h / g, bl.jlo), 0.0f, S, bl.nk);
    if (s.softcap > 0.0f) softcap_scores(S, nullptr, bl.nq * bl.nk, s.softcap);
    masked_softmax(S, lse ? lse + (b * s.H + h) * s.Tq : nullptr, seg_start, s, b, bl);
    const RowsOut o(out + (b * s.Tq + bl.t0) * ldq + h * s.Dh, ldq, bl.nq, s.Dh, s.bf16);
    mm(false, false, bl.nq, s.Dh, bl.nk, 1.0f, block_operand(S, bl.nq, bl.nk, s.bf16, 0), Vh.at(b, h / g, bl.jlo),
       0.0f, o.c(), o.ldc());
    o.finish();
  }
}

size_t attention_scratch_bytes(const AttnShape& s, int threads) {
  const size_t q = size_t(s.B * s.Tq * s.H * s.Dh), kv = size_t(s.B * s.Tk * s.Hkv * s.Dh);
  size_t caller = 2 * q * sizeof(float);                   // dkh_buf, dvh_buf
  if (s.bf16) caller += (2 * q + 2 * kv) * sizeof(uint16_t);  // make_heads slots 0-3
  const size_t block = size_t(kQBlock * s.Tk);               // (nq, nk) of one query block
  size_t per_thread = 2 * block * sizeof(float) + size_t(kQBlock * s.Dh) * sizeof(float);  // S/P, dP, RowsOut
  if (s.bf16) per_thread += 2 * block * sizeof(uint16_t);  // block_operand
  return caller + size_t(std::max(threads, 1)) * per_thread;
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* seg_start,
                        const AttnShape& s) {
  TPRO_CHECK(s.Tq == s.Tk, "attention backward needs Tq == Tk");
  const int64_t T = s.Tq, g = s.H / s.Hkv, ldq = s.H * s.Dh, ldk = s.Hkv * s.Dh;
  const float scale = s.score_scale();
  const int64_t nqb = (T + kQBlock - 1) / kQBlock;
  // Per query head dK, dV (B,H,T,Dh), summed over each kv group at the end (no races).
  thread_local std::vector<float> dkh_buf, dvh_buf;
  const size_t per = size_t(s.B * s.H * T * s.Dh);
  if (dkh_buf.size() < per) dkh_buf.resize(per), dvh_buf.resize(per);
  float* dkh = dkh_buf.data();
  float* dvh = dvh_buf.data();
  const Heads Qh = make_heads(q, s.B, T, s.H, s.Dh, ldq, s.bf16, 0), Kh = make_heads(k, s.B, T, s.Hkv, s.Dh, ldk, s.bf16, 1);
  const Heads Vh = make_heads(v, s.B, T, s.Hkv, s.Dh, ldk, s.bf16, 2);
  const Heads dOh = make_heads(dout, s.B, T, s.H, s.Dh, ldq, s.bf16, 3);
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
      const Operand Q = Qh.at(b, h, bl.t0), dO = dOh.at(b, h, bl.t0);
      const Operand K = Kh.at(b, h / g, bl.jlo), V = Vh.at(b, h / g, bl.jlo);
      float* P = thread_scratch(size_t(bl.nq * bl.nk), 0);
      float* dP = thread_scratch(size_t(bl.nq * bl.nk), 1);
      mm(false, true, bl.nq, bl.nk, s.Dh, scale, Q, K, 0.0f, P, bl.nk);
      float* tanh_s = s.softcap > 0.0f ? thread_scratch(size_t(bl.nq * bl.nk), 3) : nullptr;
      if (tanh_s) softcap_scores(P, tanh_s, bl.nq * bl.nk, s.softcap);
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
      mm(false, true, bl.nq, bl.nk, s.Dh, 1.0f, dO, V, 0.0f, dP, bl.nk);  // dP = dO·Vᵀ
      for (int64_t i = 0; i < bl.nq; ++i) {  // dS = P ⊙ (dP − rowsum(dO ⊙ O)), stored in dP
        const float* o = out + qoff + i * ldq;
        const float* d = dout + qoff + i * ldq;
        float Di = 0.0f;
#pragma omp simd reduction(+ : Di)
        for (int64_t e = 0; e < s.Dh; ++e) Di += o[e] * d[e];
        float* prow = P + i * bl.nk;
        float* drow = dP + i * bl.nk;
#pragma omp simd
        for (int64_t j = 0; j < bl.nk; ++j) drow[j] = prow[j] * (drow[j] - Di);
        if (tanh_s) {  // through the soft-cap: d raw = d capped · (1 − tanh²)
          const float* trow = tanh_s + i * bl.nk;
#pragma omp simd
          for (int64_t j = 0; j < bl.nk; ++j) drow[j] *= 1.0f - trow[j] * trow[j];
        }
      }
      const Operand dS = block_operand(dP, bl.nq, bl.nk, s.bf16, 0), Pb = block_operand(P, bl.nq, bl.nk, s.bf16, 1);
      const RowsOut dQ(dq + qoff, ldq, bl.nq, s.Dh, s.bf16);
      mm(false, false, bl.nq, s.Dh, bl.nk, scale, dS, K, 0.0f, dQ.c(), dQ.ldc());
      dQ.finish();
      mm(true, false, bl.nk, s.Dh, bl.nq, scale, dS, Q, 1.0f, dK + bl.jlo * s.Dh, s.Dh);
      mm(true, false, bl.nk, s.Dh, bl.nq, 1.0f, Pb, dO, 1.0f, dV + bl.jlo * s.Dh, s.Dh);
    }
  }
#pragma omp parallel for if (worth_parallel(s.B * T * s.H * s.Dh))
  for (int64_t bt = 0; bt < s.B * T; ++bt) {
    const int64_t b = bt / T, t = bt % T;
    for (int64_t kh = 0; kh < s.Hkv; ++kh) {
      float* dkr = dk + (bt * s.Hkv + kh) * s.Dh;
      float* dvr = dv + (bt * s.Hkv + kh) * s.Dh;
      const float* sk = dkh + ((b * s.H + kh * g) * T + t) * s.Dh;  // head kh·g; the next is T·Dh on
      const float* sv = dvh + ((b * s.H + kh * g) * T + t) * s.Dh;
      // Summed in registers over the group, each output written once.
#pragma omp simd
      for (int64_t e = 0; e < s.Dh; ++e) {
        float ak = 0.0f, av = 0.0f;
        for (int64_t j = 0; j < g; ++j) ak += sk[j * T * s.Dh + e], av += sv[j * T * s.Dh + e];
        dkr[e] = ak;
        dvr[e] = av;
      }
    }
  }
}

}  // namespace tpro
