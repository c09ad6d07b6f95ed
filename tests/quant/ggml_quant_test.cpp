// quant/ ggml blocks: dequantization and ggml's reference quantizers against the independent
// numpy implementation (fixtures from make_quant_fixtures.py, compared bit for bit), the AVX2
// paths against the scalar references on ragged panels, and round-trip error bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "common/test_util.h"
#include "core/dtype.h"
#include "core/error.h"
#include "quant/fixture_file.h"
#include "quant/ggml_blocks.h"
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

struct TypeCase {
  WType type;
  const char* key;
};
const TypeCase kGgmlTypes[] = {{WType::Q8_0, "q8_0"}, {WType::Q4_0, "q4_0"}, {WType::Q4_K, "q4_k"}, {WType::Q6_K, "q6_k"}};

// Random raw rows with sane fp16 block scales: the shape of real files, not made by our quantizers.
std::vector<uint8_t> random_rows(WType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::vector<uint8_t> raw(size_t(rows) * wtype_row_bytes(t, cols));
  for (auto& b : raw) b = uint8_t(rng());
  if (t == WType::F32) {  // random bits could be NaN; use real floats
    std::normal_distribution<float> nd;
    for (size_t i = 0; i < raw.size() / 4; ++i) {
      const float v = nd(rng);
      std::memcpy(raw.data() + 4 * i, &v, 4);
    }
  }
  if (wtype_block(t) == 1) return raw;
  std::uniform_real_distribution<float> scale(1e-4f, 0.1f);
  auto set_f16 = [&](uint8_t* p) {
    const uint16_t h = f32_to_f16(scale(rng));
    std::memcpy(p, &h, 2);
  };
  const size_t block_bytes = wtype_row_bytes(t, wtype_block(t));
  for (size_t off = 0; off < raw.size(); off += block_bytes) {
    uint8_t* blk = raw.data() + off;
    if (t == WType::Q8_0 || t == WType::Q4_0) set_f16(blk);
    if (t == WType::Q4_K) set_f16(blk), set_f16(blk + 2);
    if (t == WType::Q6_K) set_f16(blk + 208);
  }
  return raw;
}

float rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += double(x[i] - y[i]) * double(x[i] - y[i]);
    den += double(x[i]) * double(x[i]);
  }
  return float(std::sqrt(num / den));
}

}  // namespace

TEST(GgmlDequant, MatchesNumpyFixtureBitForBit) {
  for (const auto& tc : kGgmlTypes) {
    const std::string& raw = fixtures().bytes(std::string(tc.key) + ".blocks");
    const std::vector<float> want = fixtures().floats(std::string(tc.key) + ".dequant");
    const int64_t cols = wtype_block(tc.type);
    WeightMatrix w{tc.type, int64_t(want.size()) / cols, cols, raw.data(), nullptr};
    ASSERT_EQ(size_t(w.rows) * wtype_row_bytes(tc.type, cols), raw.size()) << tc.key;
    std::vector<float> ref(want.size()), fast(want.size());
    dequantize_rows_ref(w, 0, w.rows, ref.data());
    dequantize_rows(w, 0, w.rows, fast.data());
    size_t first = 0;
    EXPECT_EQ(bit_mismatches(ref.data(), want.data(), want.size(), &first), 0u)
        << tc.key << " ref, first at " << first << ": " << ref[first] << " vs " << want[first];
    EXPECT_EQ(bit_mismatches(fast.data(), want.data(), want.size(), &first), 0u)
        << tc.key << " fast, first at " << first << ": " << fast[first] << " vs " << want[first];
  }
}

TEST(GgmlQuantize, ReferenceQuantizersMatchNumpyByteForByte) {
  const std::vector<float> x = fixtures().floats("ggml.input");  // (4, 512)
  for (const auto& tc : kGgmlTypes) {
    QuantizedMatrix q = quantize_matrix(x.data(), 4, 512, tc.type);
    const std::string& want = fixtures().bytes(std::string(tc.key) + ".quant");
    ASSERT_EQ(q.data().size(), want.size()) << tc.key;
    size_t diff = 0, first = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (q.data()[i] != uint8_t(want[i]) && diff++ == 0) first = i;
    }
    EXPECT_EQ(diff, 0u) << tc.key << ": first differing byte " << first;
    const std::vector<float> want_deq = fixtures().floats(std::string(tc.key) + ".quant_dequant");
    std::vector<float> got(want_deq.size());
    dequantize_rows(q.view(), 0, 4, got.data());
    EXPECT_EQ(bit_mismatches(got.data(), want_deq.data(), got.size()), 0u) << tc.key;
  }
}

TEST(GgmlDequant, FastMatchesReferenceOnRaggedPanels) {
  std::mt19937 rng(7);
  const WType types[] = {WType::F32, WType::F16, WType::BF16, WType::Q8_0, WType::Q4_0, WType::Q4_K, WType::Q6_K};
  for (WType t : types) {
    const int64_t blk = wtype_block(t);
    // Plain types get odd widths (vector tails); block types odd block counts.
    for (int64_t cols : {blk * 1, blk * 3, blk * 7, blk == 1 ? int64_t(13) : blk * 2}) {
      const int64_t rows = 5;
      const std::vector<uint8_t> raw = random_rows(t, rows, cols, rng);
      const WeightMatrix w{t, rows, cols, raw.data(), nullptr};
      for (auto [r0, n] : {std::pair<int64_t, int64_t>{0, 5}, {1, 3}, {4, 1}, {2, 0}}) {
        std::vector<float> a(size_t(n * cols) + 1, -7.0f), b(size_t(n * cols) + 1, -7.0f);
        dequantize_rows(w, r0, n, a.data());
        dequantize_rows_ref(w, r0, n, b.data());
        EXPECT_EQ(bit_mismatches(a.data(), b.data(), a.size()), 0u)
            << wtype_name(t) << " cols " << cols << " rows [" << r0 << ", " << r0 + n << ")";
        EXPECT_EQ(a.back(), -7.0f) << "wrote past the panel";
      }
    }
  }
}

TEST(GgmlQuantize, RoundTripWithinFormatBounds) {
  // Q8_0: |x - q*d16| <= d/2 (rounding) + 127*|d - d16| (fp16 scale) <= d*(0.5 + 127*2^-11).
  // Q4_0: the value at +8 steps clamps to +7, so <= |d|*(1 + 8*2^-11) with d = max/-8.
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  const int64_t rows = 8, cols = 1024;
  std::vector<float> x(size_t(rows * cols));
  for (auto& v : x) v = nd(rng);
  for (auto [t, step, slack] : {std::tuple{WType::Q8_0, 127.0f, 0.5f + 127.0f / 2048}, {WType::Q4_0, 8.0f, 1.0f + 8.0f / 2048}}) {
    QuantizedMatrix q = quantize_matrix(x.data(), rows, cols, t);
    std::vector<float> y(x.size());
    dequantize_rows(q.view(), 0, rows, y.data());
    for (size_t b = 0; b < x.size() / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      for (int j = 0; j < 32; ++j) {
        ASSERT_LE(std::fabs(x[b * 32 + j] - y[b * 32 + j]), amax / step * slack * 1.0001f) << wtype_name(t) << " block " << b;
      }
    }
  }
  // Relative RMSE on gaussian data. A uniform quantizer of step s has RMSE s/sqrt(12); with
  // amax ~2.2 sigma over 32 values: Q8_0 steps amax/127 (0.005 sigma), Q4_0 amax/8 (0.08 sigma,
  // plus the clamp at +8); a Q4_K sub-block of 32 spans ~4.1 sigma in 15 steps (0.079 sigma),
  // Q6_K ~2 x 2 sigma per 16 in 63 steps (0.018 sigma). Bounds allow ~25% for scale rounding.
  for (auto [t, bound] : {std::pair{WType::Q4_K, 0.1f}, {WType::Q6_K, 0.023f}, {WType::Q8_0, 0.0065f}, {WType::Q4_0, 0.11f}}) {
    QuantizedMatrix q = quantize_matrix(x.data(), rows, cols, t);
    std::vector<float> y(x.size());
    dequantize_rows(q.view(), 0, rows, y.data());
    const float e = rel_rmse(x, y);
    EXPECT_LT(e, bound) << wtype_name(t);
    EXPECT_GT(e, bound / 8) << wtype_name(t) << ": suspiciously exact";
  }
}

TEST(GgmlQuantize, ZeroAndTinyBlocksDecodeToZero) {
  std::vector<float> x(512, 0.0f);
  for (int i = 256; i < 512; ++i) x[size_t(i)] = (i % 2 ? 1e-20f : -1e-20f);  // below ggml's GROUP_MAX_EPS
  for (WType t : {WType::Q8_0, WType::Q4_0, WType::Q4_K, WType::Q6_K}) {
    QuantizedMatrix q = quantize_matrix(x.data(), 1, 512, t);
    std::vector<float> y(512, 1.0f);
    dequantize_rows(q.view(), 0, 1, y.data());
    for (int i = 0; i < 512; ++i) ASSERT_LE(std::fabs(y[size_t(i)]), 1e-19f) << wtype_name(t) << " " << i;
  }
}

TEST(QuantizeMatrix, RejectsColumnsThatDoNotFitTheBlock) {
  std::vector<float> x(3 * 96, 0.5f);
  EXPECT_EQ(error_of([&] { quantize_matrix(x.data(), 3, 96, WType::Q4_K); }),
            "cannot store a (3, 96) matrix as Q4_K: its 96 columns are not a multiple of the Q4_K block of 256 "
            "(hint: use Q8_0, Q4_0, or a plain float type)");
}

TEST(QuantizeMatrix, RejectsNonFiniteWeightsNamingTheElement) {
  std::vector<float> x(2 * 64, 0.5f);
  x[64 + 5] = NAN;
  EXPECT_EQ(error_of([&] { quantize_matrix(x.data(), 2, 64, WType::NF4); }),
            "cannot quantize to NF4: weight at row 1, column 5 is nan (hint: the source weights are corrupt)");
}

TEST(QuantizeMatrix, RequantizesFromAnyWeightPanelByPanel) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  const int64_t rows = 1500, cols = 768;  // more rows than one conversion panel
  std::vector<float> x(size_t(rows * cols));
  for (auto& v : x) v = nd(rng);
  QuantizedMatrix bf16 = quantize_matrix(x.data(), rows, cols, WType::BF16);
  std::vector<float> xb(x.size());
  dequantize_rows(bf16.view(), 0, rows, xb.data());
  for (WType t : {WType::Q6_K, WType::NF4}) {
    QuantizedMatrix direct = quantize_matrix(xb.data(), rows, cols, t);
    QuantizedMatrix via = quantize_matrix(bf16.view(), t);
    EXPECT_EQ(direct.data(), via.data()) << wtype_name(t);
    if (t == WType::NF4) {
      EXPECT_EQ(direct.nf4()->qabsmax, via.nf4()->qabsmax);
      EXPECT_EQ(direct.nf4()->absmax_scale, via.nf4()->absmax_scale);
    }
  }
}

TEST(WType, NamesIdsAndMemoryReport) {
  WType t;
  ASSERT_TRUE(wtype_from_name("nf4", &t));
  EXPECT_EQ(t, WType::NF4);
  ASSERT_TRUE(wtype_from_name("q4_k", &t));
  EXPECT_EQ(t, WType::Q4_K);
  EXPECT_FALSE(wtype_from_name("Q5_K", &t));
  ASSERT_TRUE(wtype_from_ggml(14, &t));
  EXPECT_EQ(t, WType::Q6_K);
  EXPECT_FALSE(wtype_from_ggml(13, &t));  // Q5_K: not a tpro compute type
  EXPECT_EQ(wtype_to_ggml(WType::BF16), 30);
  EXPECT_EQ(wtype_to_ggml(WType::NF4), -1);
  // Bits per weight, scales included: ggml's well-known figures and QLoRA's 4.127.
  EXPECT_DOUBLE_EQ(wtype_bits_per_weight(WType::F32), 32.0);
  EXPECT_DOUBLE_EQ(wtype_bits_per_weight(WType::BF16), 16.0);
  EXPECT_DOUBLE_EQ(wtype_bits_per_weight(WType::Q8_0), 8.5);
  EXPECT_DOUBLE_EQ(wtype_bits_per_weight(WType::Q4_0), 4.5);
  EXPECT_DOUBLE_EQ(wtype_bits_per_weight(WType::Q4_K), 4.5);
  EXPECT_DOUBLE_EQ(wtype_bits_per_weight(WType::Q6_K), 6.5625);
  EXPECT_DOUBLE_EQ(wtype_bits_per_weight(WType::NF4), 4.0 + 8.0 / 64 + 32.0 / (64 * 256));
  EXPECT_DOUBLE_EQ(wtype_bytes_per_weight(WType::Q8_0), 8.5 / 8);
  // A 4096 x 4096 NF4 matrix: 8 MiB of codes, 262144 absmax codes, 1024 scales, one offset.
  EXPECT_EQ(wtype_matrix_bytes(WType::NF4, 4096, 4096), size_t(8388608 + 262144 + 4096 + 4));
  EXPECT_EQ(wtype_matrix_bytes(WType::Q4_K, 2, 512), size_t(2 * 2 * 144));
  std::vector<float> x(3 * 256 * 5, 0.25f);
  for (int i = 0; i < kWTypeCount; ++i) {
    QuantizedMatrix q = quantize_matrix(x.data(), 5, 768, WType(i));
    EXPECT_EQ(q.nbytes(), wtype_matrix_bytes(WType(i), 5, 768)) << wtype_name(WType(i));
  }
}
