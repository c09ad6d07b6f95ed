// Every reference op's backward against central finite differences, in double, on odd shapes.
#include <gtest/gtest.h>

#include "kernels/cpu/gradcheck.h"
#include "kernels/cpu/reference.h"

using namespace tpro;
using tpro::test::dot;
using tpro::test::expect_close;
using tpro::test::numeric_grad;
using tpro::test::randn;

namespace {
constexpr double kAtol = 1e-7, kRtol = 1e-5;  // central differences in double, eps 1e-6
}

TEST(GradCheck, Linear) {
  const int64_t N = 3, I = 5, O = 7;
  auto x = randn(N * I, 1), W = randn(O * I, 2), b = randn(O, 3), g = randn(N * O, 4);
  std::vector<double> out(N * O);
  auto loss = [&] {
    ref::linear_forward(out.data(), x.data(), W.data(), b.data(), N, I, O);
    return dot(out, g);
  };
  std::vector<double> dx(N * I, 0.0);
  ref::linear_backward(dx.data(), g.data(), W.data(), N, I, O);
  expect_close(dx, numeric_grad(x, loss), kAtol, kRtol, "dx");
}

class LoraGrad : public ::testing::TestWithParam<bool> {};

TEST_P(LoraGrad, InputAndAdapters) {
  const bool dropout = GetParam();
  const int64_t N = 4, I = 6, O = 5, R = 3;
  const double s = 1.7;
  auto x = randn(N * I, 5), A = randn(R * I, 6), B = randn(O * R, 7), g = randn(N * O, 8);
  std::vector<double> keep(N * I, 1.0);
  if (dropout)
    for (size_t i = 0; i < keep.size(); ++i) keep[i] = (i % 3 == 0) ? 0.0 : 1.0 / (1.0 - 0.3);
  std::vector<double> out(N * O), u(N * R);
  auto loss = [&] {
    std::fill(out.begin(), out.end(), 0.0);
    ref::lora_forward(out.data(), u.data(), x.data(), keep.data(), A.data(), B.data(), s, N, I, O, R);
    return dot(out, g);
  };
  loss();
  std::vector<double> dx(N * I, 0.0), dA(R * I, 0.0), dB(O * R, 0.0);
  ref::lora_backward(dx.data(), dA.data(), dB.data(), g.data(), x.data(), keep.data(), u.data(), A.data(), B.data(),
                     s, N, I, O, R);
  expect_close(dx, numeric_grad(x, loss), kAtol, kRtol, "dx");
  expect_close(dA, numeric_grad(A, loss), kAtol, kRtol, "dA");
  expect_close(dB, numeric_grad(B, loss), kAtol, kRtol, "dB");
}
INSTANTIATE_TEST_SUITE_P(Dropout, LoraGrad, ::testing::Values(false, true));

// DoRA: the weight norm is an input held constant (detached, as PEFT), so the finite
// differences in A and B see only the adapter's path through g = mag/wn.
class DoraGrad : public ::testing::TestWithParam<bool> {};

TEST_P(DoraGrad, InputAdaptersAndMagnitude) {
  const bool dropout = GetParam();
  const int64_t N = 4, I = 6, O = 5, R = 3;
  const double s = 1.3;
  auto x = randn(N * I, 21), W = randn(O * I, 22), b = randn(O, 23), A = randn(R * I, 24), B = randn(O * R, 25);
  auto mag = randn(O, 26), g = randn(N * O, 27);
  std::vector<double> keep(N * I, 1.0), wn(O);
  if (dropout)
    for (size_t i = 0; i < keep.size(); ++i) keep[i] = (i % 3 == 1) ? 0.0 : 1.0 / (1.0 - 0.3);
  ref::dora_weight_norm(wn.data(), W.data(), A.data(), B.data(), s, I, O, R);
  std::vector<double> out(N * O), u(N * R);
  auto loss = [&] {
    ref::dora_forward(out.data(), u.data(), x.data(), keep.data(), W.data(), b.data(), A.data(), B.data(), mag.data(),
                      wn.data(), s, N, I, O, R);
    return dot(out, g);
  };
  loss();
  std::vector<double> dx(N * I, 0.0), dA(R * I, 0.0), dB(O * R, 0.0), dmag(O, 0.0);
  ref::dora_backward(dx.data(), dA.data(), dB.data(), dmag.data(), g.data(), x.data(), keep.data(), u.data(), W.data(),
                     A.data(), B.data(), mag.data(), wn.data(), s, N, I, O, R);
  expect_close(dx, numeric_grad(x, loss), kAtol, kRtol, "dx");
  expect_close(dA, numeric_grad(A, loss), kAtol, kRtol, "dA");
  expect_close(dB, numeric_grad(B, loss), kAtol, kRtol, "dB");
  expect_close(dmag, numeric_grad(mag, loss), kAtol, kRtol, "dmag");
}
INSTANTIATE_TEST_SUITE_P(Dropout, DoraGrad, ::testing::Values(false, true));

// With mag = ‖W + s·B·A‖ (DoRA's start when B = 0) and no dropout, DoRA is plain LoRA; the
// norm is the row norm of the merged matrix.
TEST(GradCheck, DoraWithUnitScaleIsLora) {
  const int64_t N = 3, I = 5, O = 4, R = 2;
  const double s = 0.7;
  auto x = randn(N * I, 31), W = randn(O * I, 32), A = randn(R * I, 33), B = randn(O * R, 34);
  std::vector<double> wn(O), want(N * O), got(N * O), u(N * R);
  ref::dora_weight_norm(wn.data(), W.data(), A.data(), B.data(), s, I, O, R);
  for (int64_t o = 0; o < O; ++o) {
    double ss = 0;
    for (int64_t i = 0; i < I; ++i) {
      double v = W[o * I + i];
      for (int64_t r = 0; r < R; ++r) v += s * B[o * R + r] * A[r * I + i];
      ss += v * v;
    }
    EXPECT_NEAR(wn[o], std::sqrt(ss), 1e-12);
  }
  ref::linear_forward(want.data(), x.data(), W.data(), static_cast<const double*>(nullptr), N, I, O);
  ref::lora_forward(want.data(), u.data(), x.data(), static_cast<const double*>(nullptr), A.data(), B.data(), s, N, I,
                    O, R);
  ref::dora_forward(got.data(), u.data(), x.data(), static_cast<const double*>(nullptr), W.data(),
                    static_cast<const double*>(nullptr), A.data(), B.data(), wn.data(), wn.data(), s, N, I, O, R);
  expect_close(got, want, 1e-12, 1e-12, "DoRA with g = 1");
}

TEST(GradCheck, RmsNorm) {
  const int64_t N = 3, D = 7;
  auto x = randn(N * D, 9), w = randn(D, 10), g = randn(N * D, 11);
  std::vector<double> out(N * D), rstd(N);
  auto loss = [&] {
    ref::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), 1e-5, N, D);
    return dot(out, g);
  };
  loss();
  std::vector<double> dx(N * D, 0.0);
  ref::rmsnorm_backward(dx.data(), g.data(), x.data(), w.data(), rstd.data(), N, D);
  expect_close(dx, numeric_grad(x, loss), kAtol, kRtol, "dx");
}

TEST(GradCheck, Rope) {
  const int64_t N = 5, H = 3, Dh = 6;
  std::vector<int32_t> pos = {0, 1, 2, 7, 3};
  std::vector<float> inv_freq = {1.0f, 0.1f, 0.01f};
  auto x = randn(N * H * Dh, 12), g = randn(N * H * Dh, 13);
  auto loss = [&] {
    std::vector<double> y = x;
    ref::rope_forward(y.data(), pos.data(), inv_freq.data(), N, H, Dh);
    return dot(y, g);
  };
  std::vector<double> dx = g;
  ref::rope_backward(dx.data(), pos.data(), inv_freq.data(), N, H, Dh);
  expect_close(dx, numeric_grad(x, loss), kAtol, kRtol, "dx");
}

// Partial rotary (4 of 10 dims, Phi) with an attention factor on cos/sin (LongRoPE, YaRN).
TEST(GradCheck, PartialRopeWithAttentionFactor) {
  const int64_t N = 4, H = 2, Dh = 10, rot = 4;
  std::vector<int32_t> pos = {0, 3, 9, 2};
  std::vector<float> inv_freq = {1.0f, 0.05f};
  auto x = randn(N * H * Dh, 26), g = randn(N * H * Dh, 27);
  auto loss = [&] {
    std::vector<double> y = x;
    ref::rope_forward(y.data(), pos.data(), inv_freq.data(), N, H, Dh, false, rot, 1.2);
    return dot(y, g);
  };
  std::vector<double> dx = g;
  ref::rope_backward(dx.data(), pos.data(), inv_freq.data(), N, H, Dh, rot, 1.2);
  expect_close(dx, numeric_grad(x, loss), kAtol, kRtol, "dx");
}

struct AttnCase {
  int64_t B, T, H, Hkv, Dh, window;
  bool segments;
  double scale = 0.0, softcap = 0.0;  // Gemma: query_pre_attn_scalar^-½ and tanh soft-capping
};

class AttentionGrad : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionGrad, QKV) {
  const auto c = GetParam();
  auto q = randn(c.B * c.T * c.H * c.Dh, 14), k = randn(c.B * c.T * c.Hkv * c.Dh, 15);
  auto v = randn(c.B * c.T * c.Hkv * c.Dh, 16), g = randn(c.B * c.T * c.H * c.Dh, 17);
  std::vector<int32_t> seg(c.B * c.T, 0);
  if (c.segments)  // row 0: documents [0,2) [2,T); row 1: one document
    for (int64_t t = 2; t < c.T; ++t) seg[t] = 2;
  const int32_t* sp = c.segments ? seg.data() : nullptr;
  std::vector<double> out(q.size()), lse(c.B * c.H * c.T);
  auto loss = [&] {
    ref::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), sp, c.B, c.T, c.H, c.Hkv, c.Dh,
                           c.window, c.scale, c.softcap);
    return dot(out, g);
  };
  loss();
  std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  ref::attention_backward(dq.data(), dk.data(), dv.data(), g.data(), q.data(), k.data(), v.data(), out.data(),
                          lse.data(), sp, c.B, c.T, c.H, c.Hkv, c.Dh, c.window, c.scale, c.softcap);
  expect_close(dq, numeric_grad(q, loss), kAtol, kRtol, "dq");
  expect_close(dk, numeric_grad(k, loss), kAtol, kRtol, "dk");
  expect_close(dv, numeric_grad(v, loss), kAtol, kRtol, "dv");
}
INSTANTIATE_TEST_SUITE_P(Shapes, AttentionGrad,
                         ::testing::Values(AttnCase{1, 5, 2, 2, 3, 0, false}, AttnCase{2, 5, 4, 2, 6, 0, false},
                                           AttnCase{2, 7, 3, 1, 5, 0, true}, AttnCase{1, 6, 2, 1, 4, 3, false},
                                           // soft-capped scores at a scale that makes the tanh bend (cap 1.5)
                                           AttnCase{2, 6, 4, 2, 4, 0, false, 0.9, 1.5},
                                           AttnCase{1, 7, 2, 1, 6, 3, true, 0.3, 2.0}));

TEST(GradCheck, SwiGLU) {
  const int64_t n = 11;
  auto gate = randn(n, 18), up = randn(n, 19), g = randn(n, 20);
  std::vector<double> out(n);
  auto loss = [&] {
    ref::swiglu_forward(out.data(), gate.data(), up.data(), n);
    return dot(out, g);
  };
  std::vector<double> dg(n), du(n);
  ref::swiglu_backward(dg.data(), du.data(), g.data(), gate.data(), up.data(), n);
  expect_close(dg, numeric_grad(gate, loss), kAtol, kRtol, "dgate");
  expect_close(du, numeric_grad(up, loss), kAtol, kRtol, "dup");
}

TEST(GradCheck, GeGLU) {
  const int64_t n = 13;
  auto gate = randn(n, 22, 2.0), up = randn(n, 23), g = randn(n, 24);
  std::vector<double> out(n);
  auto loss = [&] {
    ref::geglu_forward(out.data(), gate.data(), up.data(), n);
    return dot(out, g);
  };
  std::vector<double> dg(n), du(n);
  ref::geglu_backward(dg.data(), du.data(), g.data(), gate.data(), up.data(), n);
  expect_close(dg, numeric_grad(gate, loss), kAtol, kRtol, "dgate");
  expect_close(du, numeric_grad(up, loss), kAtol, kRtol, "dup");
  // gelu's tanh form at known points: gelu(1) = 0.841192, gelu(-2) = -0.045402 (torch, approximate="tanh")
  std::vector<double> x = {1.0, -2.0}, one = {1.0, 1.0}, y(2);
  ref::geglu_forward(y.data(), x.data(), one.data(), 2);
  EXPECT_NEAR(y[0], 0.841192, 1e-6);
  EXPECT_NEAR(y[1], -0.045402, 1e-6);
}

TEST(GradCheck, SoftCappedCrossEntropy) {
  const int64_t N = 3, V = 7;
  auto logits = randn(N * V, 25, 4.0);  // beyond the cap of 3: the tanh saturates
  std::vector<int32_t> targets = {2, 6, -1};
  std::vector<double> weight = {0.5, 0.25, 0.5};
  const double cap = 3.0;
  auto loss = [&] { return ref::cross_entropy_forward(logits.data(), targets.data(), weight.data(), N, V, cap); };
  std::vector<double> dl(N * V);
  ref::cross_entropy_backward(dl.data(), logits.data(), targets.data(), weight.data(), N, V, cap);
  expect_close(dl, numeric_grad(logits, loss), kAtol, kRtol, "dlogits");
  EXPECT_NE(loss(), ref::cross_entropy_forward(logits.data(), targets.data(), weight.data(), N, V));
}

TEST(GradCheck, CrossEntropy) {
  const int64_t N = 4, V = 9;
  auto logits = randn(N * V, 21, 2.0);
  std::vector<int32_t> targets = {3, -1, 8, 0};
  std::vector<double> weight = {0.5, 0.5, 0.25, 0.0};
  auto loss = [&] { return ref::cross_entropy_forward(logits.data(), targets.data(), weight.data(), N, V); };
  std::vector<double> dl(N * V);
  ref::cross_entropy_backward(dl.data(), logits.data(), targets.data(), weight.data(), N, V);
  expect_close(dl, numeric_grad(logits, loss), kAtol, kRtol, "dlogits");
}

TEST(Reference, AttentionRespectsCausalityAndSegments) {
  // Changing a future token, or a token of another packed document, must not move the output.
  const int64_t B = 1, T = 6, H = 1, Hkv = 1, Dh = 4;
  auto q = randn(T * Dh, 30), k = randn(T * Dh, 31), v = randn(T * Dh, 32);
  std::vector<int32_t> seg = {0, 0, 0, 3, 3, 3};
  std::vector<double> o1(T * Dh), o2(T * Dh), lse(T);
  ref::attention_forward(o1.data(), lse.data(), q.data(), k.data(), v.data(), seg.data(), B, T, H, Hkv, Dh);
  for (int d = 0; d < Dh; ++d) {
    k[5 * Dh + d] += 1.0;  // future for all rows < 5
    v[1 * Dh + d] += 1.0;  // other document for rows 3..5
  }
  ref::attention_forward(o2.data(), lse.data(), q.data(), k.data(), v.data(), seg.data(), B, T, H, Hkv, Dh);
  for (int t : {0, 3, 4})
    for (int d = 0; d < Dh; ++d) EXPECT_EQ(o1[t * Dh + d], o2[t * Dh + d]) << t;
  EXPECT_NE(o1[1 * Dh], o2[1 * Dh]);  // row 1 sees v[1]
}
