// quant/ NF4 with double quantization: tables and thresholds against bitsandbytes' constants,
// quantization and dequantization against the independent numpy implementation (bit for
// bit), the AVX2 path against the reference, and the per-element error bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/test_util.h"
#include "core/error.h"
#include "quant/fixture_file.h"
#include "quant/nf4.h"
#include "quant/quantized_matrix.h"

using namespace tpro;
using tpro::test::error_of;
using tpro::test::bit_mismatches;
using tpro::test::QuantFixtures;

namespace {

const QuantFixtures& fixtures() {
  static const QuantFixtures f;
  return f;
}

float max_gap(const float* v, int n) {
  float g = 0;
  for (int i = 0; i + 1 < n; ++i) g = std::max(g, v[i + 1] - v[i]);
  return g;
}

}  // namespace

TEST(Nf4, CodeTablesMatchFixtureAndBitsandbytesShape) {
  const std::vector<float> codes = fixtures().floats("nf4.codes");
  ASSERT_EQ(codes.size(), 16u);
  EXPECT_EQ(bit_mismatches(codes.data(), kNf4Codes, 16), 0u);
  const std::vector<float> map = fixtures().floats("nf4.dynamic_map");
  ASSERT_EQ(map.size(), 256u);
  const float* m = nf4_dynamic_map();
  EXPECT_EQ(bit_mismatches(map.data(), m, 256), 0u);
  EXPECT_TRUE(std::is_sorted(m, m + 256));
  EXPECT_EQ(m[255], 1.0f);
  EXPECT_FLOAT_EQ(m[0], -0.99296875f);  // -(0.9859375 + 1) / 2: the signed map has no -1
  EXPECT_EQ(std::count(m, m + 256, 0.0f), 1);
  EXPECT_FLOAT_EQ(m[128], 0.55e-6f);  // smallest positive: 10^-6 * mean(0.1, 1)
}

TEST(Nf4, EncodeUsesBitsandbytesThresholdsWithTiesLow) {
  for (int i = 0; i < 15; ++i) {
    // bitsandbytes' constants are the midpoints of its double-precision table: within one f32
    // ulp of the midpoints of the f32 codes (four of them are one ulp off).
    const float mid = float((double(kNf4Codes[i]) + double(kNf4Codes[i + 1])) / 2);
    EXPECT_LE(std::fabs(kNf4Thresholds[i] - mid), std::fabs(std::nextafter(mid, 2.0f) - mid)) << i;
    EXPECT_EQ(nf4_encode(kNf4Thresholds[i]), i) << i;  // x > threshold: a tie takes the lower code
    EXPECT_EQ(nf4_encode(std::nextafter(kNf4Thresholds[i], 2.0f)), i + 1) << i;
  }
  EXPECT_EQ(nf4_encode(-1.0f), 0);
  EXPECT_EQ(nf4_encode(0.0f), 7);
  EXPECT_EQ(nf4_encode(1.0f), 15);
  EXPECT_EQ(nf4_encode(1.5f), 15);
}

TEST(Nf4, QuantizeAndDequantizeMatchNumpyBitForBit) {
  const std::vector<float> x = fixtures().floats("nf4.input");  // (10, 1664): 260 blocks, 2 groups
  QuantizedMatrix q = quantize_matrix(x.data(), 10, 1664, WType::NF4);
  const std::string& packed = fixtures().bytes("nf4.packed");
  ASSERT_EQ(q.data().size(), packed.size());
  EXPECT_TRUE(std::equal(q.data().begin(), q.data().end(), reinterpret_cast<const uint8_t*>(packed.data())));
  const std::string& qabs = fixtures().bytes("nf4.qabsmax");
  ASSERT_EQ(q.nf4()->qabsmax.size(), qabs.size());
  EXPECT_TRUE(std::equal(q.nf4()->qabsmax.begin(), q.nf4()->qabsmax.end(), reinterpret_cast<const uint8_t*>(qabs.data())));
  const std::vector<float> scale = fixtures().floats("nf4.absmax_scale");
  ASSERT_EQ(q.nf4()->absmax_scale.size(), 2u);
  EXPECT_EQ(bit_mismatches(q.nf4()->absmax_scale.data(), scale.data(), 2), 0u);
  EXPECT_EQ(q.nf4()->offset, fixtures().floats("nf4.offset")[0]);
  const std::vector<float> want = fixtures().floats("nf4.dequant");
  std::vector<float> ref(want.size()), fast(want.size());
  dequantize_rows_ref(q.view(), 0, 10, ref.data());
  dequantize_rows(q.view(), 0, 10, fast.data());
  EXPECT_EQ(bit_mismatches(ref.data(), want.data(), want.size()), 0u);
  EXPECT_EQ(bit_mismatches(fast.data(), want.data(), want.size()), 0u);
}

TEST(Nf4, FastMatchesReferenceOnPanelsThatSplitAbsmaxGroups) {
  std::mt19937 rng(5);
  std::student_t_distribution<float> heavy(3.0f);
  const int64_t rows = 37, cols = 192;  // 3 blocks a row: groups of 256 blocks straddle rows
  std::vector<float> x(size_t(rows * cols));
  for (auto& v : x) v = 0.01f * heavy(rng);
  QuantizedMatrix q = quantize_matrix(x.data(), rows, cols, WType::NF4);
  std::vector<float> all(x.size());
  dequantize_rows_ref(q.view(), 0, rows, all.data());
  for (auto [r0, n] : {std::pair<int64_t, int64_t>{0, 37}, {1, 1}, {5, 17}, {36, 1}, {10, 0}}) {
    std::vector<float> a(size_t(n * cols) + 1, -3.0f), b(size_t(n * cols) + 1, -3.0f);
    dequantize_rows(q.view(), r0, n, a.data());
    dequantize_rows_ref(q.view(), r0, n, b.data());
    EXPECT_EQ(bit_mismatches(a.data(), b.data(), a.size()), 0u) << r0 << " " << n;
    EXPECT_EQ(bit_mismatches(a.data(), all.data() + r0 * cols, size_t(n * cols)), 0u) << r0 << " " << n;
    EXPECT_EQ(a.back(), -3.0f);
  }
}

TEST(Nf4, RoundTripErrorWithinNf4PlusDoubleQuantBound) {
  // Per element, with A the block's true absmax and Â its double-quantized value:
  //   |x - nf4[q] Â| <= |x - nf4[q] A| + |nf4[q]| |A - Â| <= (G4 / 2) A + |A - Â|
  // since x/A in [-1, 1] is at most half the widest NF4 gap G4 (-1 to -0.696) from its code
  // and |nf4[q]| <= 1. The absmax error is at most half the widest dynamic-map gap G8 times
  // the group's scale S (A - mean is coded as a fraction of S). 1e-6 covers f32 rounding.
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rows = 64, cols = 1024;  // 1024 blocks: 4 absmax groups
  std::vector<float> x(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float s = 0.002f * float(1 + r % 9);  // blocks of different magnitudes
    for (int64_t c = 0; c < cols; ++c) x[size_t(r * cols + c)] = s * nd(rng);
  }
  QuantizedMatrix q = quantize_matrix(x.data(), rows, cols, WType::NF4);
  std::vector<float> y(x.size());
  dequantize_rows(q.view(), 0, rows, y.data());
  const Nf4Aux aux = q.nf4()->aux();
  const float g4 = max_gap(kNf4Codes, 16), g8 = max_gap(nf4_dynamic_map(), 256);
  EXPECT_NEAR(g4, 0.3038072f, 1e-6f);
  EXPECT_NEAR(g8, 0.0140625f, 1e-6f);
  float worst_ratio = 0;
  double se = 0, sx = 0;
  for (int64_t b = 0; b < rows * cols / kNf4Block; ++b) {
    float a = 0;
    for (int j = 0; j < kNf4Block; ++j) a = std::max(a, std::fabs(x[size_t(b * kNf4Block + j)]));
    const float a_hat = nf4_block_absmax(aux, b);
    const float s = aux.absmax_scale[b / kNf4AbsmaxGroup];
    ASSERT_LE(std::fabs(a - a_hat), g8 / 2 * s + 1e-6f * (a + s)) << "block " << b;
    const float bound = g4 / 2 * a + std::fabs(a - a_hat) + 1e-6f * a;
    for (int j = 0; j < kNf4Block; ++j) {
      const size_t i = size_t(b * kNf4Block + j);
      const float err = std::fabs(x[i] - y[i]);
      ASSERT_LE(err, bound) << "block " << b << " element " << j;
      worst_ratio = std::max(worst_ratio, err / bound);
      se += double(err) * err;
      sx += double(x[i]) * x[i];
    }
  }
  EXPECT_GT(worst_ratio, 0.8f) << "the bound should be nearly reached somewhere";
  EXPECT_LT(std::sqrt(se / sx), 0.12) << "relative RMSE of NF4 on gaussian weights";
}

TEST(Nf4, ZeroConstantAndPackingOrder) {
  std::vector<float> x(4 * 64, 0.0f);
  for (int j = 0; j < 64; ++j) x[size_t(64 + j)] = -0.25f;  // constant block
  x[128] = 0.5f;                                            // block 2: high nibble first
  x[129] = -0.5f;
  for (int j = 0; j < 64; ++j) x[size_t(192 + j)] = 0.125f * float(j % 3);
  QuantizedMatrix q = quantize_matrix(x.data(), 4, 64, WType::NF4);
  EXPECT_EQ(q.data()[0], 0x77);           // all-zero block: the zero code, not -1 * 0
  EXPECT_EQ(q.data()[64], 0xF0);          // elements 0 and 1 of block 2: codes 15 and 0
  EXPECT_EQ(q.data()[65], 0x77);
  std::vector<float> y(x.size(), 9.0f);
  dequantize_rows(q.view(), 0, 4, y.data());
  for (int j = 0; j < 64; ++j) EXPECT_EQ(y[size_t(j)], 0.0f);
  // One matrix of equal absmax values: S = 0 and every absmax decodes to the mean exactly.
  std::vector<float> c(2 * 128, -0.375f);
  QuantizedMatrix qc = quantize_matrix(c.data(), 2, 128, WType::NF4);
  std::vector<float> yc(c.size());
  dequantize_rows(qc.view(), 0, 2, yc.data());
  EXPECT_EQ(qc.nf4()->absmax_scale[0], 0.0f);
  for (float v : yc) EXPECT_EQ(v, -0.375f);
}

TEST(Nf4, SetNf4ChecksArraySizes) {
  QuantizedMatrix q(WType::NF4, 4, 128);
  Nf4Storage s;
  s.qabsmax.resize(7);
  s.absmax_scale.resize(1);
  EXPECT_EQ(error_of([&] { q.set_nf4(std::move(s)); }),
            "NF4 matrix (4, 128) needs 8 absmax codes and 1 absmax scales, got 7 and 1");
}
