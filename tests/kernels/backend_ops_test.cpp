// Every op of the Backend interface, on every backend compiled into this build (as llama.cpp's
// test-backend-ops): inputs uploaded to the device, the op run there, results downloaded and
// compared with the scalar reference (kernels/cpu/reference.h, in double) or a closed form.
// A new backend passes this file before the model runs on it (docs/ENGINE.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "kernels/cpu/gradcheck.h"
#include "kernels/cpu/lora.h"  // lora_dropout_keep: the dropout rule every backend must follow
#include "kernels/cpu/reference.h"

namespace tpro::test {
namespace {

constexpr double kAtol = 1e-4, kRtol = 1e-4;

std::vector<double> to_d(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Device copies of host vectors, freed with the fixture.
class Dev {
 public:
  explicit Dev(const Backend& be) : be_(be) {}
  template <typename T>
  T* put(const std::vector<T>& host) {
    T* p = static_cast<T*>(be_.alloc(std::max<size_t>(host.size(), 1) * sizeof(T)));
    owned_.emplace_back(p, Free{&be_});
    if (!host.empty()) be_.upload(p, host.data(), host.size() * sizeof(T));
    return p;
  }
  template <typename T>
  T* zeros(size_t n) {
    return put(std::vector<T>(n));
  }
  template <typename T>
  std::vector<T> get(const T* p, size_t n) const {
    std::vector<T> h(n);
    be_.download(h.data(), p, n * sizeof(T));
    return h;
  }

 private:
  struct Free {
    const Backend* be;
    void operator()(void* p) const { be->free(p); }
  };
  const Backend& be_;
  std::vector<std::unique_ptr<void, Free>> owned_;
};

class BackendOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { be_ = make_backend(GetParam()); }
  const Backend& be() const { return *be_; }
  std::unique_ptr<Backend> be_;
};

TEST_P(BackendOps, MemoryRoundTrips) {
  Dev d(be());
  const std::vector<float> x = randn_f(1000, 1);
  float* p = d.put(x);
  EXPECT_EQ(d.get(p, x.size()), x);
  float* q = d.zeros<float>(x.size());
  EXPECT_EQ(d.get(q, x.size()), std::vector<float>(x.size(), 0.0f)) << "alloc zero-fills";
  be().copy(q, p, x.size() * sizeof(float));
  EXPECT_EQ(d.get(q, x.size()), x);
  be().fill(q + 10, 2.5f, 20);
  const auto f = d.get(q, x.size());
  EXPECT_EQ(f[9], x[9]);
  EXPECT_EQ(f[10], 2.5f);
  EXPECT_EQ(f[29], 2.5f);
  EXPECT_EQ(f[30], x[30]);
}

TEST_P(BackendOps, ProjectWithLoraMatchesReference) {
  const int64_t N = 13, I = 48, O = 40, R = 4;
  const auto x = randn_f(N * I, 2), W = randn_f(O * I, 3), b = randn_f(O, 4), A = randn_f(R * I, 5, 0.2f),
             B = randn_f(O * R, 6, 0.2f), dy = randn_f(N * O, 7);
  const float s = 1.5f;
  for (float p : {0.0f, 0.25f}) {
    const LoraDropout drop{p, 99};
    std::vector<double> keep(static_cast<size_t>(N * I), 1.0);
    for (int64_t i = 0; i < N * I; ++i) keep[size_t(i)] = lora_dropout_keep(drop, uint64_t(i));
    Dev d(be());
    const WeightMatrix Wm{WType::F32, O, I, d.put(W), nullptr, false};
    LoraOperands lo;
    lo.A = d.put(A);
    lo.B = d.put(B);
    lo.scale = s;
    lo.R = R;
    lo.dropout = drop;
    lo.u = d.zeros<float>(static_cast<size_t>(N * R));
    lo.dA = d.zeros<float>(static_cast<size_t>(R * I));
    lo.dB = d.zeros<float>(static_cast<size_t>(O * R));
    float* xd = d.put(x);
    float* out = d.zeros<float>(static_cast<size_t>(N * O));
    be().project(out, xd, Wm, d.put(b), &lo, N);
    std::vector<double> want(static_cast<size_t>(N * O)), u(static_cast<size_t>(N * R));
    const auto xdd = to_d(x), Wd = to_d(W), bd = to_d(b), Ad = to_d(A), Bd = to_d(B), dyd = to_d(dy);
    ref::linear_forward(want.data(), xdd.data(), Wd.data(), bd.data(), N, I, O);
    ref::lora_forward(want.data(), u.data(), xdd.data(), keep.data(), Ad.data(), Bd.data(), double(s), N, I, O, R);
    expect_close(d.get(out, want.size()), want, kAtol, kRtol, "project, p=" + std::to_string(p));

    float* dx = d.put(std::vector<float>(static_cast<size_t>(N * I), 0.5f));
    be().project_backward(dx, d.put(dy), xd, Wm, &lo, N, Accumulate::yes);
    std::vector<double> dxw(static_cast<size_t>(N * I), 0.5), dA(static_cast<size_t>(R * I)), dB(static_cast<size_t>(O * R));
    ref::linear_backward(dxw.data(), dyd.data(), Wd.data(), N, I, O);  // += the 0.5 already there
    ref::lora_backward(dxw.data(), dA.data(), dB.data(), dyd.data(), xdd.data(), keep.data(), u.data(), Ad.data(),
                       Bd.data(), double(s), N, I, O, R);
    expect_close(d.get(dx, dxw.size()), dxw, kAtol, kRtol, "project_backward dx");
    expect_close(d.get(lo.dA, dA.size()), dA, kAtol, kRtol, "dA");
    expect_close(d.get(lo.dB, dB.size()), dB, kAtol, kRtol, "dB");
  }
}

// DoRA through project/project_backward: an F32 and a BF16-stored base (the weight norm
// expands BF16 rows in panels; O = 40 is one full 32-row panel and a short one), with and
// without dropout, dx accumulated and overwritten; the weight norm against ref::dora_weight_norm.
TEST_P(BackendOps, ProjectWithDoraMatchesReference) {
  const int64_t N = 11, I = 48, O = 40, R = 4;
  const auto x = randn_f(N * I, 52), W0 = randn_f(O * I, 53), b = randn_f(O, 54), A = randn_f(R * I, 55, 0.2f),
             B = randn_f(O * R, 56, 0.2f), dy = randn_f(N * O, 57), mag = randn_f(O, 58);
  const float s = 1.25f;
  for (bool bf16_base : {false, true})
    for (float p : {0.0f, 0.25f})
      for (Accumulate acc : {Accumulate::yes, Accumulate::no}) {
        SCOPED_TRACE(std::string(bf16_base ? "bf16 base" : "f32 base") + ", p=" + std::to_string(p) +
                     (acc == Accumulate::yes ? ", accumulate" : ", overwrite"));
        const LoraDropout drop{p, 7};
        std::vector<double> keep(static_cast<size_t>(N * I), 1.0);
        for (int64_t i = 0; i < N * I; ++i) keep[size_t(i)] = lora_dropout_keep(drop, uint64_t(i));
        std::vector<float> W = W0;  // the values the base holds
        std::vector<uint16_t> W16(W.size());
        for (size_t i = 0; i < W.size(); ++i) W16[i] = f32_to_bf16(W[i]), W[i] = bf16_to_f32(W16[i]);
        Dev d(be());
        const WeightMatrix Wm = bf16_base ? WeightMatrix{WType::BF16, O, I, d.put(W16), nullptr, false}
                                          : WeightMatrix{WType::F32, O, I, d.put(W), nullptr, false};
        LoraOperands lo;
        lo.A = d.put(A);
        lo.B = d.put(B);
        lo.scale = s;
        lo.R = R;
        lo.dropout = drop;
        lo.u = d.zeros<float>(static_cast<size_t>(N * R));
        lo.dA = d.zeros<float>(static_cast<size_t>(R * I));
        lo.dB = d.zeros<float>(static_cast<size_t>(O * R));
        lo.mag = d.put(mag);
        lo.dmag = d.zeros<float>(static_cast<size_t>(O));
        lo.wnorm = d.zeros<float>(static_cast<size_t>(O));
        lo.wnorm_stale = true;
        float* xd = d.put(x);
        float* out = d.zeros<float>(static_cast<size_t>(N * O));
        be().project(out, xd, Wm, d.put(b), &lo, N);
        const auto xdd = to_d(x), Wd = to_d(W), bd = to_d(b), Ad = to_d(A), Bd = to_d(B), dyd = to_d(dy), md = to_d(mag);
        std::vector<double> wn(static_cast<size_t>(O));
        ref::dora_weight_norm(wn.data(), Wd.data(), Ad.data(), Bd.data(), double(s), I, O, R);
        expect_close(d.get(lo.wnorm, wn.size()), wn, kAtol, kRtol, "weight norm written by project");
        std::vector<double> want(static_cast<size_t>(N * O)), u(static_cast<size_t>(N * R));
        ref::dora_forward(want.data(), u.data(), xdd.data(), keep.data(), Wd.data(), bd.data(), Ad.data(), Bd.data(),
                          md.data(), wn.data(), double(s), N, I, O, R);
        expect_close(d.get(out, want.size()), want, kAtol, kRtol, "project");

        const float dx0 = acc == Accumulate::yes ? 0.5f : 1e6f;
        float* dx = d.put(std::vector<float>(static_cast<size_t>(N * I), dx0));
        be().project_backward(dx, d.put(dy), xd, Wm, &lo, N, acc);
        std::vector<double> dxw(static_cast<size_t>(N * I), acc == Accumulate::yes ? 0.5 : 0.0);
        std::vector<double> dA(static_cast<size_t>(R * I)), dB(static_cast<size_t>(O * R)), dm(static_cast<size_t>(O));
        ref::dora_backward(dxw.data(), dA.data(), dB.data(), dm.data(), dyd.data(), xdd.data(), keep.data(), u.data(),
                           Wd.data(), Ad.data(), Bd.data(), md.data(), wn.data(), double(s), N, I, O, R);
        expect_close(d.get(dx, dxw.size()), dxw, kAtol, kRtol, "project_backward dx");
        expect_close(d.get(lo.dA, dA.size()), dA, kAtol, kRtol, "dA");
        expect_close(d.get(lo.dB, dB.size()), dB, kAtol, kRtol, "dB");
        expect_close(d.get(lo.dmag, dm.size()), dm, kAtol, kRtol, "dmag");

        // A fresh norm is not recomputed: project uses the buffer as it is.
        std::vector<float> wn2(static_cast<size_t>(O));
        for (int64_t o = 0; o < O; ++o) wn2[size_t(o)] = 2.0f * float(wn[size_t(o)]);
        be().upload(lo.wnorm, wn2.data(), wn2.size() * sizeof(float));
        lo.wnorm_stale = false;
        be().project(out, xd, Wm, d.put(b), &lo, N);
        std::vector<double> want2(static_cast<size_t>(N * O));
        ref::dora_forward(want2.data(), u.data(), xdd.data(), keep.data(), Wd.data(), bd.data(), Ad.data(), Bd.data(),
                          md.data(), to_d(wn2).data(), double(s), N, I, O, R);
        expect_close(d.get(out, want2.size()), want2, kAtol, kRtol, "project with a fresh (kept) norm");
        EXPECT_EQ(d.get(lo.wnorm, wn2.size()), wn2);
      }
}

// DoRA with bf16 compute and dropout on a BF16 base: every output and gradient within bf16
// rounding of the reference (relative L2 under 2%: each product's inputs are rounded to 8
// significant bits); a wrong operand or a missed dropout mask gives O(1).
TEST_P(BackendOps, DoraInBf16WithDropoutStaysWithinRounding) {
  const int64_t N = 9, I = 64, O = 48, R = 4;
  const auto x = randn_f(N * I, 70), W0 = randn_f(O * I, 71), A = randn_f(R * I, 72, 0.2f), B = randn_f(O * R, 73, 0.2f),
             dy = randn_f(N * O, 74), mag = randn_f(O, 75);
  std::vector<float> W = W0;
  std::vector<uint16_t> W16(W.size());
  for (size_t i = 0; i < W.size(); ++i) W16[i] = f32_to_bf16(W[i]), W[i] = bf16_to_f32(W16[i]);
  const LoraDropout drop{0.3f, 5};
  std::vector<double> keep(static_cast<size_t>(N * I));
  for (int64_t i = 0; i < N * I; ++i) keep[size_t(i)] = lora_dropout_keep(drop, uint64_t(i));
  Dev d(be());
  const WeightMatrix Wm{WType::BF16, O, I, d.put(W16), nullptr, true};
  LoraOperands lo;
  lo.A = d.put(A), lo.B = d.put(B), lo.scale = 2.0f, lo.R = R, lo.dropout = drop;
  lo.u = d.zeros<float>(static_cast<size_t>(N * R));
  lo.dA = d.zeros<float>(static_cast<size_t>(R * I));
  lo.dB = d.zeros<float>(static_cast<size_t>(O * R));
  lo.mag = d.put(mag);
  lo.dmag = d.zeros<float>(static_cast<size_t>(O));
  lo.wnorm = d.zeros<float>(static_cast<size_t>(O));
  float* xd = d.put(x);
  float* out = d.zeros<float>(static_cast<size_t>(N * O));
  be().project(out, xd, Wm, nullptr, &lo, N);
  float* dx = d.zeros<float>(static_cast<size_t>(N * I));
  be().project_backward(dx, d.put(dy), xd, Wm, &lo, N, Accumulate::no);
  const auto xdd = to_d(x), Wd = to_d(W), Ad = to_d(A), Bd = to_d(B), dyd = to_d(dy), md = to_d(mag);
  std::vector<double> wn(static_cast<size_t>(O)), want(static_cast<size_t>(N * O)), u(static_cast<size_t>(N * R));
  ref::dora_weight_norm(wn.data(), Wd.data(), Ad.data(), Bd.data(), 2.0, I, O, R);
  ref::dora_forward(want.data(), u.data(), xdd.data(), keep.data(), Wd.data(), static_cast<const double*>(nullptr),
                    Ad.data(), Bd.data(), md.data(), wn.data(), 2.0, N, I, O, R);
  std::vector<double> dxw(static_cast<size_t>(N * I)), dA(static_cast<size_t>(R * I)), dB(static_cast<size_t>(O * R)),
      dm(static_cast<size_t>(O));
  ref::dora_backward(dxw.data(), dA.data(), dB.data(), dm.data(), dyd.data(), xdd.data(), keep.data(), u.data(),
                     Wd.data(), Ad.data(), Bd.data(), md.data(), wn.data(), 2.0, N, I, O, R);
  auto rel = [](const std::vector<float>& got, const std::vector<double>& w) {
    double e = 0, n = 0;
    for (size_t i = 0; i < w.size(); ++i) e += (got[i] - w[i]) * (got[i] - w[i]), n += w[i] * w[i];
    return std::sqrt(e / n);
  };
  EXPECT_LT(rel(d.get(out, want.size()), want), 2e-2) << "out";
  EXPECT_GT(rel(d.get(out, want.size()), want), 1e-6) << "out: the products were not rounded to bf16";
  EXPECT_LT(rel(d.get(dx, dxw.size()), dxw), 2e-2) << "dx";
  EXPECT_LT(rel(d.get(lo.dA, dA.size()), dA), 2e-2) << "dA";
  EXPECT_LT(rel(d.get(lo.dB, dB.size()), dB), 2e-2) << "dB";
  EXPECT_LT(rel(d.get(lo.dmag, dm.size()), dm), 2e-2) << "dmag";
}

TEST_P(BackendOps, DoraWeightNormMatchesReference) {
  const int64_t I = 40, O = 70, R = 3;  // 70 rows: two full panels and a short one
  const auto W = randn_f(O * I, 60), A = randn_f(R * I, 61, 0.3f), B = randn_f(O * R, 62, 0.3f);
  Dev d(be());
  float* wn = d.zeros<float>(static_cast<size_t>(O));
  be().dora_weight_norm(wn, WeightMatrix{WType::F32, O, I, d.put(W), nullptr, false}, d.put(A), d.put(B), -0.75f, R);
  std::vector<double> want(static_cast<size_t>(O));
  const auto Wd = to_d(W), Ad = to_d(A), Bd = to_d(B);
  ref::dora_weight_norm(want.data(), Wd.data(), Ad.data(), Bd.data(), -0.75, I, O, R);
  expect_close(d.get(wn, want.size()), want, 1e-5, 1e-6, "wn");
}

TEST_P(BackendOps, ProjectInBf16StaysWithinRounding) {
  // W.bf16_compute: inputs of the frozen and LoRA products rounded to bf16, sums in f32. The
  // bound is the kernels' bf16 contract (3% of the RMS + 2% per element).
  const int64_t N = 9, I = 64, O = 32, R = 4;
  const auto x = randn_f(N * I, 40), W = randn_f(O * I, 41), A = randn_f(R * I, 42, 0.2f), B = randn_f(O * R, 43, 0.2f);
  Dev d(be());
  const WeightMatrix Wm{WType::F32, O, I, d.put(W), nullptr, true};
  LoraOperands lo;
  lo.A = d.put(A);
  lo.B = d.put(B);
  lo.scale = 2.0f;
  lo.R = R;
  lo.u = d.zeros<float>(static_cast<size_t>(N * R));
  float* out = d.zeros<float>(static_cast<size_t>(N * O));
  be().project(out, d.put(x), Wm, nullptr, &lo, N);
  std::vector<double> want(static_cast<size_t>(N * O)), u(static_cast<size_t>(N * R));
  const auto xd = to_d(x), Wd = to_d(W), Ad = to_d(A), Bd = to_d(B);
  ref::linear_forward(want.data(), xd.data(), Wd.data(), static_cast<const double*>(nullptr), N, I, O);
  ref::lora_forward(want.data(), u.data(), xd.data(), static_cast<const double*>(nullptr), Ad.data(), Bd.data(), 2.0, N,
                    I, O, R);
  const auto got = d.get(out, want.size());
  double rms = 0, diff = 0;
  for (double w : want) rms += w * w;
  rms = std::sqrt(rms / double(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_LE(std::abs(got[i] - want[i]), 0.03 * rms + 0.02 * std::abs(want[i])) << i;
    diff = std::max(diff, std::abs(got[i] - want[i]));
  }
  EXPECT_GT(diff, 1e-6) << "the products were not rounded to bf16";
}

TEST_P(BackendOps, ProjectBackwardOverwritesWithoutAccumulate) {
  const int64_t N = 5, I = 16, O = 24;
  const auto W = randn_f(O * I, 8), dy = randn_f(N * O, 9);
  Dev d(be());
  const WeightMatrix Wm{WType::F32, O, I, d.put(W), nullptr, false};
  float* dx = d.put(std::vector<float>(static_cast<size_t>(N * I), 1e6f));
  be().project_backward(dx, d.put(dy), nullptr, Wm, nullptr, N, Accumulate::no);
  std::vector<double> want(static_cast<size_t>(N * I));
  const auto Wd = to_d(W), dyd = to_d(dy);
  ref::linear_backward(want.data(), dyd.data(), Wd.data(), N, I, O);
  expect_close(d.get(dx, want.size()), want, kAtol, kRtol, "dx");
}

TEST_P(BackendOps, GemmMatchesLoops) {
  const int64_t M = 7, N = 9, K = 5;
  const auto A = randn_f(M * K, 10), B = randn_f(K * N, 11), C0 = randn_f(M * N, 12);
  Dev d(be());
  float* C = d.put(C0);
  be().gemm(false, false, M, N, K, 2.0f, d.put(A), K, d.put(B), N, 0.5f, C, N);
  std::vector<double> want(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += double(A[size_t(i * K + k)]) * double(B[size_t(k * N + j)]);
      want[size_t(i * N + j)] = 2.0 * acc + 0.5 * double(C0[size_t(i * N + j)]);
    }
  expect_close(d.get(C, want.size()), want, kAtol, kRtol, "gemm");
}

TEST_P(BackendOps, RmsnormMatchesReference) {
  const int64_t N = 6, D = 40;
  const auto x = randn_f(N * D, 13), w = randn_f(D, 14), dy = randn_f(N * D, 15);
  Dev d(be());
  float *out = d.zeros<float>(static_cast<size_t>(N * D)), *rstd = d.zeros<float>(static_cast<size_t>(N)), *xd = d.put(x), *wd = d.put(w);
  be().rmsnorm_forward(out, rstd, xd, wd, 1e-5f, N, D);
  std::vector<double> want(static_cast<size_t>(N * D)), rs(static_cast<size_t>(N)), dxw(static_cast<size_t>(N * D), 0.25);
  const auto xdd = to_d(x), wdd = to_d(w), dyd = to_d(dy);
  ref::rmsnorm_forward(want.data(), rs.data(), xdd.data(), wdd.data(), 1e-5, N, D);
  expect_close(d.get(out, want.size()), want, kAtol, kRtol, "rmsnorm");
  float* dx = d.put(std::vector<float>(static_cast<size_t>(N * D), 0.25f));
  be().rmsnorm_backward(dx, d.put(dy), xd, wd, rstd, N, D);
  ref::rmsnorm_backward(dxw.data(), dyd.data(), xdd.data(), wdd.data(), rs.data(), N, D);
  expect_close(d.get(dx, dxw.size()), dxw, kAtol, kRtol, "rmsnorm backward (accumulates)");
}

TEST_P(BackendOps, RopeTableForwardAndBackwardMatchReference) {
  const int64_t N = 9, H = 3, Dh = 10, half = Dh / 2, n_pos = 1001;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t j = 0; j < half; ++j) inv_freq[size_t(j)] = float(std::pow(10000.0, -2.0 * double(j) / double(Dh)));
  const std::vector<int32_t> pos = {0, 1, 2, 3, 100, 5, 6, 1000, 8};
  Dev d(be());
  float* table = d.zeros<float>(static_cast<size_t>(2 * n_pos * half));
  be().rope_table(table, table + n_pos * half, inv_freq, n_pos, 1.0f);
  const auto host = d.get(table, size_t(2 * n_pos * half));
  for (int64_t p : {0, 7, 1000})
    for (int64_t j = 0; j < half; ++j) {
      const double a = double(p) * double(inv_freq[size_t(j)]);
      ASSERT_NEAR(host[size_t(p * half + j)], std::cos(a), 1e-6);
      ASSERT_NEAR(host[size_t((n_pos + p) * half + j)], std::sin(a), 1e-6);
    }
  const RopeTable t{table, table + n_pos * half, half, n_pos};
  const auto x = randn_f(N * H * Dh, 16);
  float* xd = d.put(x);
  int32_t* pd = d.put(pos);
  be().rope_forward(xd, pd, t, N, H, Dh);
  auto want = to_d(x);
  ref::rope_forward(want.data(), pos.data(), inv_freq.data(), N, H, Dh);
  expect_close(d.get(xd, want.size()), want, kAtol, kRtol, "rope");
  be().rope_backward(xd, pd, t, N, H, Dh);
  auto back = want;
  ref::rope_backward(back.data(), pos.data(), inv_freq.data(), N, H, Dh);
  expect_close(d.get(xd, back.size()), back, kAtol, kRtol, "rope backward");
  expect_close(d.get(xd, x.size()), to_d(x), kAtol, kRtol, "rope backward undoes rope");

  // Partial rotary (Phi: 6 of 10 dims rotate, the rest pass through) with a LongRoPE-style
  // attention factor on cos and sin; backward is the transpose.
  const int64_t rot = 6, rhalf = rot / 2;
  const float mscale = 1.19f;
  float* rtab = d.zeros<float>(static_cast<size_t>(2 * n_pos * rhalf));
  be().rope_table(rtab, rtab + n_pos * rhalf, std::span<const float>(inv_freq.data(), size_t(rhalf)), n_pos, mscale);
  const RopeTable rt{rtab, rtab + n_pos * rhalf, rhalf, n_pos};
  float* xp = d.put(x);
  be().rope_forward(xp, pd, rt, N, H, Dh);
  auto pw = to_d(x);
  ref::rope_forward(pw.data(), pos.data(), inv_freq.data(), N, H, Dh, false, rot, double(mscale));
  expect_close(d.get(xp, pw.size()), pw, kAtol, kRtol, "partial rope");
  for (int64_t n = 0; n < N * H; ++n)
    for (int64_t e = rot; e < Dh; ++e) ASSERT_EQ(d.get(xp, pw.size())[size_t(n * Dh + e)], x[size_t(n * Dh + e)]);
  be().rope_backward(xp, pd, rt, N, H, Dh);
  ref::rope_backward(pw.data(), pos.data(), inv_freq.data(), N, H, Dh, rot, double(mscale));
  expect_close(d.get(xp, pw.size()), pw, kAtol, kRtol, "partial rope backward");
}

TEST_P(BackendOps, AttentionMatchesReference) {
  const int64_t B = 2, T = 11, H = 4, Hkv = 2, Dh = 8;
  const auto q = randn_f(B * T * H * Dh, 17), k = randn_f(B * T * Hkv * Dh, 18), v = randn_f(B * T * Hkv * Dh, 19),
             dout = randn_f(B * T * H * Dh, 20);
  std::vector<int32_t> seg(static_cast<size_t>(B * T));
  for (int64_t t = 0; t < T; ++t) seg[size_t(t)] = 0, seg[size_t(T + t)] = t < 5 ? 0 : 5;  // two documents in row 1
  struct Variant {
    int64_t window;
    float scale, softcap;  // Gemma: query_pre_attn_scalar^-½ and tanh soft-capping of the scores
  };
  for (const Variant& c : {Variant{0, 0.0f, 0.0f}, Variant{4, 0.0f, 0.0f}, Variant{0, 0.7f, 1.5f},
                           Variant{4, 0.25f, 3.0f}}) {
    Dev d(be());
    AttnShape s{B, T, T, H, Hkv, Dh, c.window, false};
    s.scale = c.scale, s.softcap = c.softcap;
    float *out = d.zeros<float>(q.size()), *lse = d.zeros<float>(static_cast<size_t>(B * H * T));
    float *qd = d.put(q), *kd = d.put(k), *vd = d.put(v);
    int32_t* sd = d.put(seg);
    be().attention_forward(out, lse, qd, kd, vd, sd, s, 0);
    std::vector<double> wo(q.size()), wl(static_cast<size_t>(B * H * T));
    const auto qq = to_d(q), kk = to_d(k), vv = to_d(v), dd = to_d(dout);
    ref::attention_forward(wo.data(), wl.data(), qq.data(), kk.data(), vv.data(), seg.data(), B, T, H, Hkv, Dh,
                           c.window, double(c.scale), double(c.softcap));
    const std::string w = " (window " + std::to_string(c.window) + ", softcap " + std::to_string(c.softcap) + ")";
    expect_close(d.get(out, wo.size()), wo, kAtol, kRtol, "attention" + w);
    expect_close(d.get(lse, wl.size()), wl, kAtol, kRtol, "lse" + w);
    float *dq = d.zeros<float>(q.size()), *dk = d.zeros<float>(k.size()), *dv = d.zeros<float>(v.size());
    be().attention_backward(dq, dk, dv, d.put(dout), qd, kd, vd, out, lse, sd, s);
    std::vector<double> gq(q.size()), gk(k.size()), gv(v.size());
    ref::attention_backward(gq.data(), gk.data(), gv.data(), dd.data(), qq.data(), kk.data(), vv.data(), wo.data(),
                            wl.data(), seg.data(), B, T, H, Hkv, Dh, c.window, double(c.scale), double(c.softcap));
    expect_close(d.get(dq, gq.size()), gq, kAtol, kRtol, "dq" + w);
    expect_close(d.get(dk, gk.size()), gk, kAtol, kRtol, "dk" + w);
    expect_close(d.get(dv, gv.size()), gv, kAtol, kRtol, "dv" + w);
  }
}

TEST_P(BackendOps, CopyColumnsSplitsAndPutsBackFusedBlocks) {
  const int64_t N = 5, W = 11, w = 4, off = 3;  // columns [3, 7) of a (5, 11) fused output
  const auto src = randn_f(N * W, 45), add = randn_f(N * w, 46);
  Dev d(be());
  float *fused = d.put(src), *part = d.zeros<float>(size_t(N * w));
  be().copy_columns(part, w, fused + off, W, N, w, Accumulate::no);
  const auto got = d.get(part, size_t(N * w));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < w; ++j) ASSERT_EQ(got[size_t(n * w + j)], src[size_t(n * W + off + j)]);
  be().copy_columns(fused + off, W, d.put(add), w, N, w, Accumulate::yes);
  const auto back = d.get(fused, size_t(N * W));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < W; ++j) {
      const bool in = j >= off && j < off + w;
      ASSERT_EQ(back[size_t(n * W + j)], src[size_t(n * W + j)] + (in ? add[size_t(n * w + j - off)] : 0.0f));
    }
}

TEST_P(BackendOps, GegluAndSoftcapMatchReference) {
  const int64_t n = 1001;
  const auto g = randn_f(n, 41, 3.0f), u = randn_f(n, 42), dy = randn_f(n, 43);
  Dev d(be());
  float *out = d.zeros<float>(n), *gd = d.put(g), *ud = d.put(u);
  be().geglu_forward(out, gd, ud, n);
  std::vector<double> want(n), dg(n), du(n);
  const auto gg = to_d(g), uu = to_d(u), dd = to_d(dy);
  ref::geglu_forward(want.data(), gg.data(), uu.data(), n);
  expect_close(d.get(out, n), want, kAtol, kRtol, "geglu");
  float *dgd = d.zeros<float>(n), *dud = d.zeros<float>(n);
  be().geglu_backward(dgd, dud, d.put(dy), gd, ud, n);
  ref::geglu_backward(dg.data(), du.data(), dd.data(), gg.data(), uu.data(), n);
  expect_close(d.get(dgd, n), dg, kAtol, kRtol, "dgate");
  expect_close(d.get(dud, n), du, kAtol, kRtol, "dup");
  be().softcap(gd, n, 2.5f);
  ref::softcap_forward(want.data(), gg.data(), n, 2.5);
  expect_close(d.get(gd, n), want, 1e-6, 1e-6, "softcap");
}

TEST_P(BackendOps, SwigluAndAddMatchReference) {
  const int64_t n = 1001;
  const auto g = randn_f(n, 21, 3.0f), u = randn_f(n, 22), dy = randn_f(n, 23);
  Dev d(be());
  float *out = d.zeros<float>(n), *gd = d.put(g), *ud = d.put(u);
  be().swiglu_forward(out, gd, ud, n);
  std::vector<double> want(n), dg(n), du(n);
  const auto gg = to_d(g), uu = to_d(u), dd = to_d(dy);
  ref::swiglu_forward(want.data(), gg.data(), uu.data(), n);
  expect_close(d.get(out, n), want, kAtol, kRtol, "swiglu");
  float *dgd = d.zeros<float>(n), *dud = d.zeros<float>(n);
  be().swiglu_backward(dgd, dud, d.put(dy), gd, ud, n);
  ref::swiglu_backward(dg.data(), du.data(), dd.data(), gg.data(), uu.data(), n);
  expect_close(d.get(dgd, n), dg, kAtol, kRtol, "dgate");
  expect_close(d.get(dud, n), du, kAtol, kRtol, "dup");
  be().add(gd, ud, n);
  std::vector<double> sum(n);
  for (int64_t i = 0; i < n; ++i) sum[size_t(i)] = double(g[size_t(i)] + u[size_t(i)]);
  expect_close(d.get(gd, n), sum, 0, 0, "add");
}

TEST_P(BackendOps, NeftuneNoiseIsTheSeededUniformOfItsMagnitude) {
  const int64_t N = 6, T = 3, D = 50;
  const double alpha = 5.0;
  Dev d(be());
  float* x = d.zeros<float>(static_cast<size_t>(N * D));
  be().neftune_noise(x, N, T, D, alpha, 7);
  const auto got = d.get(x, size_t(N * D));
  const float mag = float(alpha / std::sqrt(double(T * D)));
  const uint64_t s = splitmix64(7 ^ 0x4e454654ull);
  for (int64_t i = 0; i < N * D; ++i)
    ASSERT_FLOAT_EQ(got[size_t(i)], mag * (2.0f * hash_uniform(s, uint64_t(i)) - 1.0f)) << i;
}

TEST_P(BackendOps, EmbeddingGatherAndScatterAdd) {
  const int64_t V = 10, D = 6, N = 5;
  const auto E = randn_f(V * D, 24), dy = randn_f(N * D, 25);
  const std::vector<int32_t> tok = {3, 0, 9, 3, 7};  // token 3 twice: its gradient rows add
  Dev d(be());
  const WeightMatrix Em{WType::F32, V, D, d.put(E), nullptr, false};
  float* out = d.zeros<float>(static_cast<size_t>(N * D));
  int32_t* td = d.put(tok);
  be().embedding_forward(out, td, Em, N);
  const auto got = d.get(out, size_t(N * D));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < D; ++j) ASSERT_EQ(got[size_t(n * D + j)], E[size_t(tok[size_t(n)] * D + j)]);
  float* dE = d.put(std::vector<float>(static_cast<size_t>(V * D), 1.0f));
  be().embedding_backward(dE, d.put(dy), td, N, D);
  std::vector<double> want(static_cast<size_t>(V * D), 1.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < D; ++j) want[size_t(tok[size_t(n)] * D + j)] += double(dy[size_t(n * D + j)]);
  expect_close(d.get(dE, want.size()), want, 1e-6, 1e-6, "embedding backward");
}

TEST_P(BackendOps, GatherAndScatterRows) {
  const int64_t D = 4;
  const auto src = randn_f(6 * D, 26);
  const std::vector<int32_t> rows = {5, 1, 2};
  Dev d(be());
  float *g = d.zeros<float>(static_cast<size_t>(3 * D)), *sd = d.put(src);
  int32_t* rd = d.put(rows);
  be().gather_rows(g, sd, rd, 3, D);
  const auto got = d.get(g, size_t(3 * D));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < D; ++j) ASSERT_EQ(got[size_t(i * D + j)], src[size_t(rows[size_t(i)] * D + j)]);
  float* back = d.zeros<float>(static_cast<size_t>(6 * D));
  be().scatter_rows(back, g, rd, 3, D);
  const auto b = d.get(back, size_t(6 * D));
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t j = 0; j < D; ++j) {
      const bool kept = r == 5 || r == 1 || r == 2;
      ASSERT_EQ(b[size_t(r * D + j)], kept ? src[size_t(r * D + j)] : 0.0f) << r;
    }
}

TEST_P(BackendOps, CrossEntropyMatchesReference) {
  const int64_t n = 7, V = 33;
  const auto logits = randn_f(n * V, 27, 3.0f);
  const std::vector<int32_t> tg = {1, 32, -1, 0, 5, 5, 20};
  const std::vector<float> w = {0.1f, 0.2f, 0.0f, 0.1f, 0.3f, 0.1f, 0.2f};
  Dev d(be());
  float *ld = d.put(logits), *nll = d.zeros<float>(n);
  const double got = be().cross_entropy(ld, d.put(tg), d.put(w), n, V, nll, Gradient::yes, 0.0f);
  const auto ll = to_d(logits), ww = to_d(w);
  EXPECT_NEAR(got, ref::cross_entropy_forward(ll.data(), tg.data(), ww.data(), n, V), 1e-5);
  std::vector<double> grad(static_cast<size_t>(n * V));
  ref::cross_entropy_backward(grad.data(), ll.data(), tg.data(), ww.data(), n, V);
  expect_close(d.get(ld, grad.size()), grad, 1e-6, kRtol, "dlogits");
  const auto per_row = d.get(nll, n);
  EXPECT_EQ(per_row[2], 0.0f) << "an untrained row has no loss";
  const double one = ref::cross_entropy_forward(ll.data() + 4 * V, tg.data() + 4, std::vector<double>{1.0}.data(), 1, V);
  EXPECT_NEAR(per_row[4], one, 1e-5);
}

TEST_P(BackendOps, SoftCappedCrossEntropyMatchesReference) {  // Gemma 2's final_logit_softcapping
  const int64_t n = 5, V = 41;
  const auto logits = randn_f(n * V, 44, 6.0f);  // well past the cap: the tanh saturates
  const std::vector<int32_t> tg = {1, 40, -1, 7, 7};
  const std::vector<float> w = {0.2f, 0.2f, 0.2f, 0.1f, 0.3f};
  const float cap = 4.0f;
  Dev d(be());
  float *ld = d.put(logits), *nll = d.zeros<float>(n);
  const double got = be().cross_entropy(ld, d.put(tg), d.put(w), n, V, nll, Gradient::yes, cap);
  const auto ll = to_d(logits), ww = to_d(w);
  EXPECT_NEAR(got, ref::cross_entropy_forward(ll.data(), tg.data(), ww.data(), n, V, double(cap)), 1e-5);
  std::vector<double> grad(static_cast<size_t>(n * V));
  ref::cross_entropy_backward(grad.data(), ll.data(), tg.data(), ww.data(), n, V, double(cap));
  expect_close(d.get(ld, grad.size()), grad, 1e-6, kRtol, "dlogits through the cap");
  float* ev = d.put(logits);  // without a gradient the loss is the same
  EXPECT_NEAR(be().cross_entropy(ev, d.put(tg), d.put(w), n, V, nullptr, Gradient::no, cap), got, 1e-9);
}

TEST_P(BackendOps, AdamWNormAndScaleMatchTheirDefinitions) {
  const int64_t n = 300;
  const auto p0 = randn_f(n, 28), g = randn_f(n, 29), m0 = randn_f(n, 30, 0.1f);
  std::vector<float> v0 = randn_f(n, 31, 0.1f);
  for (auto& x : v0) x = x * x;
  const AdamWHyper h{1e-2, 0.9, 0.95, 1e-8, 0.1};
  const int64_t step = 3;
  Dev d(be());
  float *p = d.put(p0), *gd = d.put(g), *m = d.put(m0), *v = d.put(v0);
  be().adamw(p, gd, m, v, n, h, step);
  // torch.optim.AdamW, in double: decay, moments, bias-corrected step.
  std::vector<double> wp(n), wm(n), wv(n);
  const double bc1 = 1 - std::pow(h.beta1, double(step)), bc2 = 1 - std::pow(h.beta2, double(step));
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[size_t(i)];
    wm[size_t(i)] = h.beta1 * m0[size_t(i)] + (1 - h.beta1) * gi;
    wv[size_t(i)] = h.beta2 * v0[size_t(i)] + (1 - h.beta2) * gi * gi;
    wp[size_t(i)] = double(p0[size_t(i)]) * (1 - h.lr * h.weight_decay) -
                    h.lr / bc1 * wm[size_t(i)] / (std::sqrt(wv[size_t(i)]) / std::sqrt(bc2) + h.eps);
  }
  expect_close(d.get(p, n), wp, 1e-6, 1e-5, "params");
  expect_close(d.get(m, n), wm, 1e-7, 1e-6, "exp_avg");
  expect_close(d.get(v, n), wv, 1e-9, 1e-6, "exp_avg_sq");
  double ss = 0;
  for (float x : g) ss += double(x) * double(x);
  EXPECT_NEAR(be().l2_norm(gd, n), std::sqrt(ss), 1e-9 * std::sqrt(ss));
  be().scale(gd, n, 0.5f);
  std::vector<double> half(n);
  for (int64_t i = 0; i < n; ++i) half[size_t(i)] = 0.5 * double(g[size_t(i)]);
  expect_close(d.get(gd, n), half, 0, 0, "scale");
}

INSTANTIATE_TEST_SUITE_P(Compiled, BackendOps, ::testing::ValuesIn(compiled_backends()),
                         [](const auto& info) { return info.param; });

TEST(Backends, AnUnknownDeviceNamesTheCompiledOnes) {
  EXPECT_ERROR_HAS(make_backend("tpu"), "unknown device 'tpu': this build runs on cpu");
  EXPECT_THAT(compiled_backends(), ::testing::Contains("cpu"));
}

}  // namespace
}  // namespace tpro::test
