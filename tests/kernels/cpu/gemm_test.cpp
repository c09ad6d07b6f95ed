// gemm.h against a double-precision reference on ragged shapes: every transpose, padded
// leading dimensions, alpha/beta, K = 0, calls from inside a parallel region, and the bf16
// product on bf16-valued inputs. Tolerances: f32 sums of K ≤ 129 unit-variance products are
// within ~1e-6·√K relative; bf16×bf16 products are exact in f32, so the bf16 GEMM on
// bf16-valued inputs differs from the exact result only by f32 summation: 1e-4 for both.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gradcheck.h"

using namespace tpro;
using tpro::test::expect_close;
using tpro::test::randn_f;

namespace {

struct Shape {
  int64_t M, N, K;
};
constexpr Shape kShapes[] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {64, 3, 129}, {5, 70, 16}};

// Row-major op(X) element (i, j) of a stored matrix with leading dimension ld.
template <typename T>
double at(const std::vector<T>& x, bool trans, int64_t i, int64_t j, int64_t ld) {
  return double(trans ? x[size_t(j * ld + i)] : x[size_t(i * ld + j)]);
}

template <typename T>
std::vector<double> reference(bool ta, bool tb, const Shape& s, float alpha, const std::vector<T>& A, int64_t lda,
                              const std::vector<T>& B, int64_t ldb, float beta, const std::vector<float>& C,
                              int64_t ldc) {
  std::vector<double> out(C.begin(), C.end());
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < s.N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < s.K; ++k) acc += at(A, ta, i, k, lda) * at(B, tb, k, j, ldb);
      const double c0 = beta == 0.0f ? 0.0 : double(beta) * double(C[size_t(i * ldc + j)]);
      out[size_t(i * ldc + j)] = double(alpha) * acc + c0;
    }
  return out;
}

// Operands with padding columns (ld = stored cols + 3), filled with f32 or bf16-valued data.
struct Case {
  bool ta, tb;
  Shape s;
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C;
};

Case make_case(bool ta, bool tb, const Shape& s, uint32_t seed) {
  Case c{ta, tb, s, (ta ? s.M : s.K) + 3, (tb ? s.K : s.N) + 3, s.N + 3, {}, {}, {}};
  c.A = randn_f(size_t((ta ? s.K : s.M) * c.lda), seed);
  c.B = randn_f(size_t((tb ? s.N : s.K) * c.ldb), seed + 1);
  c.C = randn_f(size_t(s.M * c.ldc), seed + 2);
  return c;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = f32_to_bf16(x[i]);
  return h;
}

std::vector<float> widen(const std::vector<uint16_t>& h) {
  std::vector<float> x(h.size());
  for (size_t i = 0; i < h.size(); ++i) x[i] = bf16_to_f32(h[i]);
  return x;
}

}  // namespace

TEST(Gemm, SgemmMatchesReferenceOnEveryLayout) {
  uint32_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const Shape& s : kShapes)
        for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, -0.5f}}) {
          Case c = make_case(ta, tb, s, seed += 3);
          const auto want = reference(ta, tb, s, alpha, c.A, c.lda, c.B, c.ldb, beta, c.C, c.ldc);
          sgemm(ta, tb, s.M, s.N, s.K, alpha, c.A.data(), c.lda, c.B.data(), c.ldb, beta, c.C.data(), c.ldc);
          expect_close(c.C, want, 1e-4, 1e-4,
                       "sgemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " M=" + std::to_string(s.M) +
                           " beta=" + std::to_string(beta));
        }
}

TEST(Gemm, Bf16MatchesReferenceOnBf16Values) {
  uint32_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const Shape& s : kShapes)
        for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {0.125f, 1.0f}}) {
          Case c = make_case(ta, tb, s, seed += 3);
          const auto A16 = to_bf16(c.A), B16 = to_bf16(c.B);
          const auto want = reference(ta, tb, s, alpha, widen(A16), c.lda, widen(B16), c.ldb, beta, c.C, c.ldc);
          gemm_bf16(ta, tb, s.M, s.N, s.K, alpha, A16.data(), c.lda, B16.data(), c.ldb, beta, c.C.data(), c.ldc);
          expect_close(c.C, want, 1e-4, 1e-4, "gemm_bf16 ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) +
                                                 " M=" + std::to_string(s.M));
        }
}

TEST(Gemm, EmptyProductsOnlyScaleC) {
  std::vector<float> C = {1.0f, 2.0f, 3.0f, 4.0f};
  sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
  gemm_bf16(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));
  sgemm(false, false, 0, 2, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, nullptr, 2);  // nothing to touch
}

TEST(Gemm, ThreadsCallIndependentlyInsideAParallelRegion) {
  // Attention calls one small GEMM per task from inside its parallel loop: each call must run
  // on its own thread with its own primitive and give the serial result.
  const Shape s{24, 40, 33};
  constexpr int kTasks = 16;
  std::vector<Case> cases;
  std::vector<std::vector<double>> want;
  for (int t = 0; t < kTasks; ++t) {
    cases.push_back(make_case(false, t % 2 == 1, s, uint32_t(500 + 3 * t)));
    Case& c = cases.back();
    want.push_back(reference(c.ta, c.tb, s, 1.0f, c.A, c.lda, c.B, c.ldb, 0.0f, c.C, c.ldc));
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(4)
  for (int t = 0; t < kTasks; ++t) {
    Case& c = cases[size_t(t)];
    sgemm(c.ta, c.tb, s.M, s.N, s.K, 1.0f, c.A.data(), c.lda, c.B.data(), c.ldb, 0.0f, c.C.data(), c.ldc);
  }
  for (int t = 0; t < kTasks; ++t) expect_close(cases[size_t(t)].C, want[size_t(t)], 1e-4, 1e-4, "task");
}

// The matmul rounding: f32_to_bf16, but denormal inputs become zeros of their sign.
uint16_t want_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (u & 0x7f800000u) == 0 ? uint16_t((u >> 16) & 0x8000u) : f32_to_bf16(x);
}

TEST(Gemm, ConvertToBf16IsBitIdenticalToTheScalarRounding) {
  std::vector<float> x = randn_f(1037, 7, 100.0f);  // not a multiple of any vector width
  const float specials[] = {0.0f,
                            -0.0f,
                            1.0f + 1.0f / 256,  // a tie: rounds to even (1.0)
                            1.0f + 3.0f / 256,  // a tie: rounds to even (up)
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min() * 1000,
                            std::numeric_limits<float>::max(),  // rounds to +inf
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::signaling_NaN()};
  for (size_t i = 0; i < std::size(specials); ++i) x[i * 37] = specials[i];
  std::vector<uint16_t> got(x.size());
  convert_f32_to_bf16(x.data(), got.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], want_bf16(x[i])) << "element " << i << " = " << x[i];
  EXPECT_TRUE(std::isnan(bf16_to_f32(got[9 * 37])));
  EXPECT_EQ(bf16_to_f32(got[6 * 37]), std::numeric_limits<float>::infinity());
  EXPECT_EQ(got[4 * 37], 0x0000) << "a positive denormal flushes to +0";
  EXPECT_EQ(got[5 * 37], 0x8000) << "a negative denormal flushes to -0";
  // Every element position of the vector loops and the tail sees a denormal too.
  std::vector<float> d(70, -std::numeric_limits<float>::denorm_min() * 3);
  std::vector<uint16_t> dh(d.size());
  convert_f32_to_bf16(d.data(), dh.data(), int64_t(d.size()));
  for (uint16_t h : dh) ASSERT_EQ(h, 0x8000);
}

TEST(Gemm, LargeConversionSplitOverThreadsIsIdentical) {
  std::vector<float> x = randn_f(200003, 8);
  std::vector<uint16_t> got(x.size());
  convert_f32_to_bf16(x.data(), got.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], want_bf16(x[i])) << "element " << i;
}

TEST(Gemm, PackedBMatchesThePlainProduct) {
  // op(B) (K, N) from a row-major (N, K) matrix (transposed, like x·Wᵀ), packed for M rows.
  const int64_t M = 48, K = 96, N = 80;
  const auto A = randn_f(size_t(M * K), 61), B = randn_f(size_t(N * K), 62), C0 = randn_f(size_t(M * N), 63);
  const auto A16 = to_bf16(A), B16 = to_bf16(B);
  for (bool bf16 : {false, true})
    for (bool b_bf16 : {false, true}) {
      if (b_bf16 && !bf16) continue;  // bf16 values are packed for bf16 products only
      auto p = pack_b(true, K, N, b_bf16 ? static_cast<const void*>(B16.data()) : B.data(), K, b_bf16, bf16, M);
      // Blocked layouts are what oneDNN's AVX-512 (bf16: AMX / AVX512-BF16) kernels read; other
      // CPUs may keep the plain one, and then there is nothing packed to check.
      if (cpu_avx512() && (!bf16 || cpu_native_bf16())) ASSERT_TRUE(p) << "bf16=" << bf16;
      if (!p) continue;
      EXPECT_EQ(packed_is_bf16(*p), bf16);
      EXPECT_GE(packed_bytes(*p), size_t(K * N) * (bf16 ? 2 : 4));
      std::vector<float> C = C0;
      ASSERT_TRUE(gemm_packed(M, 0.5f, bf16 ? static_cast<const void*>(A16.data()) : A.data(), K, *p, 1.0f, C.data(), N))
          << "the layout packed for M rows is read for M rows";
      const auto want = bf16 ? reference(false, true, {M, N, K}, 0.5f, widen(A16), K, widen(B16), K, 1.0f, C0, N)
                             : reference(false, true, {M, N, K}, 0.5f, A, K, B, K, 1.0f, C0, N);
      expect_close(C, want, 1e-4, 1e-4, "packed, bf16=" + std::to_string(bf16));
    }
}
