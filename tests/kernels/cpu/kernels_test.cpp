// Fast f32 kernels against the scalar reference (run in double) on ragged shapes.
// Tolerances: f32 accumulation over K terms of unit-variance data gives relative error
// ~1e-6·√K; 1e-4 relative / 1e-4 absolute leaves a wide margin while catching any wrong index.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/dtype.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/gradcheck.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/lora.h"
#include "kernels/cpu/norm_rope_swiglu.h"
#include "kernels/cpu/reference.h"
#include "quant/ggml_blocks.h"

using namespace tpro;
using tpro::test::expect_close;
using tpro::test::randn_f;

namespace {
constexpr double kAtol = 1e-4, kRtol = 1e-4;

std::vector<double> to_d(const std::vector<float>& v) { return {v.begin(), v.end()}; }
}  // namespace

// (storage type, bf16 compute). In bf16 compute the reference sees x, W and dy rounded to
// bf16: the products are then exact in f32 and only the summation order differs.
class LinearTest : public ::testing::TestWithParam<std::tuple<WType, bool>> {};

void round_to_bf16(std::vector<float>& v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
}

TEST_P(LinearTest, ForwardBackwardMatchReference) {
  const auto [wt, bf16] = GetParam();
  const int64_t N = 37, I = 64, O = 1100;  // O > one 1024-row panel
  auto x = randn_f(N * I, 1), W = randn_f(O * I, 2), b = randn_f(O, 3), dy = randn_f(N * O, 4);
  std::vector<uint16_t> w16(W.size());
  std::vector<uint8_t> wq;
  const void* data = W.data();
  if (wt == WType::BF16 || wt == WType::F16) {
    DType t = wt == WType::BF16 ? DType::BF16 : DType::F16;
    from_f32(w16.data(), t, W.data(), W.size());
    to_f32(W.data(), w16.data(), t, W.size());  // reference sees the rounded weights
    data = w16.data();
  } else if (wt == WType::Q8_0) {
    wq.resize(size_t(O) * wtype_row_bytes(wt, I));
    quantize_row_q8_0_ref(W.data(), reinterpret_cast<BlockQ8_0*>(wq.data()), O * I);
    data = wq.data();
  }
  WeightMatrix M{wt, O, I, data, nullptr, bf16};
  if (wt == WType::Q8_0) dequantize_rows_ref(M, 0, O, W.data());  // reference sees the dequantized weights
  std::vector<float> out(N * O);
  linear_forward(out.data(), x.data(), M, b.data(), N);
  if (bf16) {  // in place: an F32 M points into W
    round_to_bf16(x);
    round_to_bf16(W);
    round_to_bf16(dy);
  }
  std::vector<double> want(N * O);
  auto xd = to_d(x), Wd = to_d(W), bd = to_d(b), dyd = to_d(dy);
  ref::linear_forward(want.data(), xd.data(), Wd.data(), bd.data(), N, I, O);
  expect_close(out, want, kAtol, kRtol, "out");

  std::vector<float> dx(N * I, 0.5f);
  auto dy_in = randn_f(N * O, 4);  // the unrounded gradient: the kernel rounds it itself
  linear_backward(dx.data(), dy_in.data(), M, N, /*accumulate=*/true);
  std::vector<double> dxw(N * I, 0.5);
  ref::linear_backward(dxw.data(), dyd.data(), Wd.data(), N, I, O);
  expect_close(dx, dxw, kAtol, kRtol, "dx");
}
INSTANTIATE_TEST_SUITE_P(Types, LinearTest,
                         ::testing::Values(std::tuple{WType::F32, false}, std::tuple{WType::BF16, false},
                                           std::tuple{WType::F16, false}, std::tuple{WType::Q8_0, false},
                                           std::tuple{WType::BF16, true}, std::tuple{WType::F32, true},
                                           std::tuple{WType::Q8_0, true}));

TEST(Kernels, PackedWeightsGiveThePlainProducts) {
  // Packed for 64 rows, used for 64, 37 and 1 rows (another M may or may not take the layout:
  // either way the result must be the plain one, up to summation order).
  const int64_t I = 96, O = 160;
  auto W = randn_f(O * I, 41), b = randn_f(O, 42);
  const WeightMatrix plain{WType::F32, O, I, W.data(), nullptr, false};
  const PackedWeight p = pack_weight(plain, 64);
  // oneDNN's AVX-512 kernels read blocked weights; on other CPUs it may keep the plain layout,
  // and the products below must hold either way.
  if (cpu_avx512()) {
    ASSERT_TRUE(p.fwd && p.bwd) << "oneDNN packs this shape on AVX-512";
    EXPECT_GE(p.bytes(), size_t(2 * O * I) * 4);
  }
  WeightMatrix packed = plain;
  packed.prepared = &p;
  for (int64_t N : {64, 37, 1}) {
    auto x = randn_f(N * I, 43), dy = randn_f(N * O, 44);
    std::vector<float> y0(N * O), y1(N * O), dx0(N * I, 0.5f), dx1(N * I, 0.5f);
    linear_forward(y0.data(), x.data(), plain, b.data(), N);
    linear_forward(y1.data(), x.data(), packed, b.data(), N);
    expect_close(y1, to_d(y0), 1e-5, 1e-5, "packed forward, N=" + std::to_string(N));
    linear_backward(dx0.data(), dy.data(), plain, N, true);
    linear_backward(dx1.data(), dy.data(), packed, N, true);
    expect_close(dx1, to_d(dx0), 1e-5, 1e-5, "packed backward, N=" + std::to_string(N));
  }
  // A matrix multiplied in bf16 gets no copy (measured no faster), and f32 copies attached to
  // it are ignored: its products stay the bf16 ones.
  WeightMatrix b16 = plain;
  b16.bf16_compute = true;
  EXPECT_FALSE(pack_weight(b16, 64).fwd);
  WeightMatrix b16_packed = b16;
  b16_packed.prepared = &p;
  auto x = randn_f(5 * I, 45);
  std::vector<float> y0(5 * O), y1(5 * O);
  linear_forward(y0.data(), x.data(), b16, nullptr, 5);
  linear_forward(y1.data(), x.data(), b16_packed, nullptr, 5);
  EXPECT_EQ(y0, y1) << "a copy packed for f32 products was used for bf16 ones";
}

TEST(Kernels, LinearTakesAGivenBf16InputAsIs) {
  // The model passes its saved bf16 copy; the kernel must use it rather than re-round inp.
  const int64_t N = 5, I = 32, O = 7;
  auto x = randn_f(N * I, 21), W = randn_f(O * I, 22);
  std::vector<uint16_t> x16(N * I, f32_to_bf16(1.0f)), w16(O * I);
  from_f32(w16.data(), DType::BF16, W.data(), W.size());
  WeightMatrix M{WType::BF16, O, I, w16.data(), nullptr, true};
  std::vector<float> out(N * O), want(N * O, 0.0f);
  linear_forward(out.data(), x.data(), M, nullptr, N, false, x16.data());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) want[size_t(n * O + o)] += bf16_to_f32(w16[size_t(o * I + i)]);
  expect_close(out, to_d(want), kAtol, kRtol, "out from the given bf16 input");
}

TEST(Kernels, LoraMatchesReferenceWithDropout) {
  for (float p : {0.0f, 0.25f}) {
    const int64_t N = 19, I = 33, O = 21, R = 5;
    const float s = 2.0f;
    LoraDropout drop{p, 1234};
    auto x = randn_f(N * I, 5), A = randn_f(R * I, 6), B = randn_f(O * R, 7), dy = randn_f(N * O, 8);
    std::vector<double> keep(N * I);
    for (int64_t i = 0; i < N * I; ++i) keep[i] = lora_dropout_keep(drop, uint64_t(i));
    std::vector<float> out(N * O, 1.0f), u(N * R);
    lora_forward(out.data(), u.data(), x.data(), A.data(), B.data(), s, drop, N, I, O, R);
    std::vector<double> outw(N * O, 1.0), uw(N * R);
    auto xd = to_d(x), Ad = to_d(A), Bd = to_d(B), dyd = to_d(dy);
    ref::lora_forward(outw.data(), uw.data(), xd.data(), keep.data(), Ad.data(), Bd.data(), double(s), N, I, O, R);
    expect_close(out, outw, kAtol, kRtol, "out");
    expect_close(u, uw, kAtol, kRtol, "u");
    std::vector<float> dx(N * I, 0.0f), dA(R * I, 0.0f), dB(O * R, 0.0f);
    lora_backward(dx.data(), dA.data(), dB.data(), dy.data(), x.data(), u.data(), A.data(), B.data(), s, drop, N, I,
                  O, R);
    std::vector<double> dxw(N * I), dAw(R * I), dBw(O * R);
    ref::lora_backward(dxw.data(), dAw.data(), dBw.data(), dyd.data(), xd.data(), keep.data(), uw.data(), Ad.data(),
                       Bd.data(), double(s), N, I, O, R);
    expect_close(dx, dxw, kAtol, kRtol, "dx");
    expect_close(dA, dAw, 1e-3, kRtol, "dA");
    expect_close(dB, dBw, 1e-3, kRtol, "dB");
  }
}

// The bf16 path rounds x, A, B, u, du and dout to bf16 (8 significant bits: relative error
// ≤ 2^-9 per rounding) and sums in f32. Each output is a sum of products of two rounded
// operands, so its error is ~2^-8 of the sum of |terms|: within 3% of the output's RMS
// (bounding |terms| for these sizes), and the whole-tensor cosine within 1e-4 of 1. `floor`:
// an absolute bound for outputs that are exact cancellations of O(1) terms (attention with one
// visible key has dq = 0 exactly, bf16 leaves ~2^-8 of the terms).
void expect_close_bf16(const std::vector<float>& got, const std::vector<double>& want, const std::string& what,
                       double floor = 0.0) {
  ASSERT_EQ(got.size(), want.size());
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < got.size(); ++i) ab += got[i] * want[i], aa += double(got[i]) * got[i], bb += want[i] * want[i];
  const double rms = std::sqrt(bb / double(want.size()));
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= floor + 0.03 * rms + 0.02 * std::fabs(want[i])) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i] << " (rms " << rms << ")";
  EXPECT_EQ(bad, 0) << what;
  if (rms > 10 * floor) EXPECT_GT(ab / std::sqrt(aa * bb), 1.0 - 1e-4) << what << ": cosine similarity";
}

TEST(Kernels, LoraBf16PathMatchesReferenceWithinBf16Rounding) {
  for (float p : {0.0f, 0.25f}) {
    const int64_t N = 40, I = 96, O = 72, R = 8;
    const float s = 2.0f;
    LoraDropout drop{p, 77};
    auto x = randn_f(N * I, 31), A = randn_f(R * I, 32, 0.1f), B = randn_f(O * R, 33), dy = randn_f(N * O, 34);
    std::vector<uint16_t> x16(x.size()), dy16(dy.size());
    from_f32(x16.data(), DType::BF16, x.data(), x.size());
    from_f32(dy16.data(), DType::BF16, dy.data(), dy.size());
    std::vector<double> keep(N * I);
    for (int64_t i = 0; i < N * I; ++i) keep[i] = lora_dropout_keep(drop, uint64_t(i));
    std::vector<float> out(N * O, 1.0f), u(N * R);
    lora_forward(out.data(), u.data(), x.data(), A.data(), B.data(), s, drop, N, I, O, R, x16.data());
    std::vector<double> outw(N * O, 1.0), uw(N * R);
    auto xd = to_d(x), Ad = to_d(A), Bd = to_d(B), dyd = to_d(dy);
    ref::lora_forward(outw.data(), uw.data(), xd.data(), keep.data(), Ad.data(), Bd.data(), double(s), N, I, O, R);
    expect_close_bf16(u, uw, "u");
    for (auto& o : outw) o -= 1.0;  // compare the LoRA term itself, not the offset
    for (auto& o : out) o -= 1.0f;
    expect_close_bf16(out, outw, "out");
    std::vector<float> dx(N * I, 0.0f), dA(R * I, 0.0f), dB(O * R, 0.0f);
    lora_backward(dx.data(), dA.data(), dB.data(), dy.data(), x.data(), u.data(), A.data(), B.data(), s, drop, N, I,
                  O, R, dy16.data(), x16.data());
    std::vector<double> dxw(N * I), dAw(R * I), dBw(O * R);
    ref::lora_backward(dxw.data(), dAw.data(), dBw.data(), dyd.data(), xd.data(), keep.data(), uw.data(), Ad.data(),
                       Bd.data(), double(s), N, I, O, R);
    expect_close_bf16(dx, dxw, "dx");
    expect_close_bf16(dA, dAw, "dA");
    expect_close_bf16(dB, dBw, "dB");
  }
}

TEST(Kernels, DropoutRateIsHonoured) {
  LoraDropout d{0.3f, 99};
  int zeros = 0;
  for (int i = 0; i < 100000; ++i) zeros += lora_dropout_keep(d, uint64_t(i)) == 0.0f;
  EXPECT_NEAR(zeros / 100000.0, 0.3, 0.01);
}

TEST(Kernels, RmsNormMatchesReference) {
  const int64_t N = 13, D = 77;
  auto x = randn_f(N * D, 9), w = randn_f(D, 10), dy = randn_f(N * D, 11);
  std::vector<float> out(N * D), rstd(N), dx(N * D, 0.25f);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), 1e-5f, N, D);
  rmsnorm_backward(dx.data(), dy.data(), x.data(), w.data(), rstd.data(), N, D);
  auto xd = to_d(x), wd = to_d(w), dyd = to_d(dy);
  std::vector<double> outw(N * D), rw(N), dxw(N * D, 0.25);
  ref::rmsnorm_forward(outw.data(), rw.data(), xd.data(), wd.data(), 1e-5, N, D);
  ref::rmsnorm_backward(dxw.data(), dyd.data(), xd.data(), wd.data(), rw.data(), N, D);
  expect_close(out, outw, kAtol, kRtol, "out");
  expect_close(dx, dxw, kAtol, kRtol, "dx");
}

TEST(Kernels, RopeMatchesReferenceAndInverts) {
  const int64_t N = 9, H = 3, Dh = 10;
  std::vector<float> inv_freq(Dh / 2);
  for (int64_t j = 0; j < Dh / 2; ++j) inv_freq[j] = float(std::pow(10000.0, -2.0 * j / Dh));
  std::vector<int32_t> pos = {0, 1, 2, 3, 100, 5, 6, 1000, 8};
  std::vector<float> cos(1001 * Dh / 2), sin(cos.size());
  rope_table_build(cos.data(), sin.data(), inv_freq.data(), Dh / 2, 1001);
  const RopeTable rt{cos.data(), sin.data(), Dh / 2, 1001};
  auto x = randn_f(N * H * Dh, 12);
  auto y = x;
  rope_forward(y.data(), pos.data(), rt, N, H, Dh);
  auto yd = to_d(x);
  ref::rope_forward(yd.data(), pos.data(), inv_freq.data(), N, H, Dh);
  expect_close(y, yd, kAtol, kRtol, "rope");
  rope_backward(y.data(), pos.data(), rt, N, H, Dh);
  expect_close(y, to_d(x), kAtol, kRtol, "inverse");
}

TEST(Kernels, SwigluMatchesReference) {
  const int64_t n = 1001;
  auto g = randn_f(n, 13, 3.0f), u = randn_f(n, 14), dy = randn_f(n, 15);
  std::vector<float> out(n), dg(n), du(n);
  swiglu_forward(out.data(), g.data(), u.data(), n);
  swiglu_backward(dg.data(), du.data(), dy.data(), g.data(), u.data(), n);
  auto gd = to_d(g), ud = to_d(u), dyd = to_d(dy);
  std::vector<double> ow(n), dgw(n), duw(n);
  ref::swiglu_forward(ow.data(), gd.data(), ud.data(), n);
  ref::swiglu_backward(dgw.data(), duw.data(), dyd.data(), gd.data(), ud.data(), n);
  expect_close(out, ow, kAtol, kRtol, "out");
  expect_close(dg, dgw, kAtol, kRtol, "dgate");
  expect_close(du, duw, kAtol, kRtol, "dup");
}

struct FastAttnCase {
  int64_t B, T, H, Hkv, Dh, window;
  bool segments;
};
class FastAttention : public ::testing::TestWithParam<FastAttnCase> {};

namespace {
// The fast kernels' outputs next to the double reference's, for one case and precision.
struct AttnRun {
  std::vector<float> out, lse, dq, dk, dv;
  std::vector<double> out_w, lse_w, dq_w, dk_w, dv_w;
};

AttnRun run_attention(const FastAttnCase& c, bool bf16, uint32_t seed) {
  AttnShape s{c.B, c.T, c.T, c.H, c.Hkv, c.Dh, c.window, bf16};
  auto q = randn_f(c.B * c.T * c.H * c.Dh, seed), k = randn_f(c.B * c.T * c.Hkv * c.Dh, seed + 1);
  auto v = randn_f(c.B * c.T * c.Hkv * c.Dh, seed + 2), dout = randn_f(c.B * c.T * c.H * c.Dh, seed + 3);
  std::vector<int32_t> seg(c.B * c.T, 0);
  if (c.segments)  // row 0: documents of length 3, 50, rest; other rows one document
    for (int64_t t = 0; t < c.T; ++t) seg[t] = t < 3 ? 0 : (t < 53 ? 3 : 53);
  const int32_t* sp = c.segments ? seg.data() : nullptr;
  AttnRun r;
  r.out.resize(q.size()), r.lse.resize(c.B * c.H * c.T);
  attention_forward(r.out.data(), r.lse.data(), q.data(), k.data(), v.data(), sp, s);
  r.dq.resize(q.size()), r.dk.resize(k.size()), r.dv.resize(v.size());
  attention_backward(r.dq.data(), r.dk.data(), r.dv.data(), dout.data(), q.data(), k.data(), v.data(), r.out.data(),
                     r.lse.data(), sp, s);
  auto qd = to_d(q), kd = to_d(k), vd = to_d(v), dod = to_d(dout);
  r.out_w.resize(q.size()), r.lse_w.resize(r.lse.size()), r.dq_w.resize(q.size()), r.dk_w.resize(k.size()),
      r.dv_w.resize(v.size());
  ref::attention_forward(r.out_w.data(), r.lse_w.data(), qd.data(), kd.data(), vd.data(), sp, c.B, c.T, c.H, c.Hkv,
                         c.Dh, c.window);
  ref::attention_backward(r.dq_w.data(), r.dk_w.data(), r.dv_w.data(), dod.data(), qd.data(), kd.data(), vd.data(),
                          r.out_w.data(), r.lse_w.data(), sp, c.B, c.T, c.H, c.Hkv, c.Dh, c.window);
  return r;
}
}  // namespace

TEST_P(FastAttention, MatchesReference) {
  const AttnRun r = run_attention(GetParam(), false, 16);
  expect_close(r.out, r.out_w, kAtol, kRtol, "out");
  expect_close(r.lse, r.lse_w, kAtol, kRtol, "lse");
  expect_close(r.dq, r.dq_w, kAtol, kRtol, "dq");
  expect_close(r.dk, r.dk_w, kAtol, kRtol, "dk");
  expect_close(r.dv, r.dv_w, kAtol, kRtol, "dv");
}

// bf16 products (q, k, v, dout, P and dS rounded) against the exact reference: within the
// bf16 bounds of expect_close_bf16 above.
TEST_P(FastAttention, Bf16MatchesReferenceWithinRounding) {
  const AttnRun r = run_attention(GetParam(), true, 26);
  constexpr double kFloor = 0.02;  // unit-variance inputs: O(1) terms
  expect_close_bf16(r.out, r.out_w, "out", kFloor);
  expect_close_bf16(r.lse, r.lse_w, "lse", kFloor);
  expect_close_bf16(r.dq, r.dq_w, "dq", kFloor);
  expect_close_bf16(r.dk, r.dk_w, "dk", kFloor);
  expect_close_bf16(r.dv, r.dv_w, "dv", kFloor);
}
INSTANTIATE_TEST_SUITE_P(Shapes, FastAttention,
                         ::testing::Values(FastAttnCase{1, 1, 1, 1, 4, 0, false}, FastAttnCase{2, 67, 4, 2, 8, 0, false},
                                           FastAttnCase{1, 130, 6, 2, 16, 0, true},
                                           FastAttnCase{2, 100, 3, 3, 5, 17, false},
                                           FastAttnCase{3, 129, 2, 1, 7, 0, true}));

TEST(Kernels, AttentionWithCacheMatchesFullPrefix) {
  // Generation: the last 3 queries against a 10-key cache equal rows 7..9 of full attention.
  const int64_t T = 10, H = 4, Hkv = 2, Dh = 8;
  auto q = randn_f(T * H * Dh, 20), k = randn_f(T * Hkv * Dh, 21), v = randn_f(T * Hkv * Dh, 22);
  std::vector<float> full(q.size()), lse(H * T);
  attention_forward(full.data(), lse.data(), q.data(), k.data(), v.data(), nullptr, AttnShape{1, T, T, H, Hkv, Dh, 0});
  std::vector<float> part(3 * H * Dh);
  attention_forward(part.data(), nullptr, q.data() + 7 * H * Dh, k.data(), v.data(), nullptr,
                    AttnShape{1, 3, T, H, Hkv, Dh, 0});
  std::vector<float> want(full.begin() + 7 * H * Dh, full.end());
  expect_close(part, to_d(want), 1e-5, 1e-5, "cached");
}

TEST(Kernels, CrossEntropyFusedMatchesReference) {
  const int64_t n = 7, V = 301;
  auto logits = randn_f(n * V, 23, 3.0f);
  std::vector<int32_t> t = {0, 300, -1, 5, 7, 9, 150};
  std::vector<float> w = {0.1f, 0.2f, 0.3f, 0.0f, 0.5f, 0.1f, 0.1f};
  auto ld = to_d(logits);
  std::vector<double> wd(w.begin(), w.end()), dlw(n * V);
  double want = ref::cross_entropy_forward(ld.data(), t.data(), wd.data(), n, V);
  ref::cross_entropy_backward(dlw.data(), ld.data(), t.data(), wd.data(), n, V);
  std::vector<float> nll(n);
  double got = cross_entropy_fused(logits.data(), t.data(), w.data(), n, V, nll.data(), true);
  EXPECT_NEAR(got, want, 1e-5);
  expect_close(logits, dlw, 1e-6, 1e-4, "dlogits");
  EXPECT_EQ(nll[2], 0.0f);
}

TEST(Kernels, AdamWMatchesClosedFormFirstStep) {
  // At step 1 the bias-corrected update is lr·g/(|g|+eps) after decay: p1 = p0(1−lr·wd) − lr·sign(g).
  std::vector<float> p = {1.0f, -2.0f, 0.5f}, g = {0.3f, -0.1f, 2.0f}, m(3, 0.0f), v(3, 0.0f);
  AdamWHyper h{0.01, 0.9, 0.999, 1e-8, 0.1};
  adamw_update(p.data(), g.data(), m.data(), v.data(), 3, h, 1);
  EXPECT_NEAR(p[0], 1.0 * (1 - 0.001) - 0.01, 1e-6);
  EXPECT_NEAR(p[1], -2.0 * (1 - 0.001) + 0.01, 1e-6);
  EXPECT_NEAR(p[2], 0.5 * (1 - 0.001) - 0.01, 1e-6);
  EXPECT_NEAR(grad_l2_norm(g.data(), 3), std::sqrt(0.09 + 0.01 + 4.0), 1e-6);  // g holds f32 roundings
}
