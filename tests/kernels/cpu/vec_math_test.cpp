// The vectorised exp against std::exp (double): relative error within 2 ulp of float on
// [-87, 88], exact 0-free behaviour at the clamps, and the sigmoid built on it.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/vec_math.h"

using namespace tpro;

TEST(VecMath, ExpWithinTwoUlp) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.0f; v += 0.01234f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1.0f, -1.0f, 0.5f, 88.0f}) x.push_back(v);
  std::vector<float> y(x.size());
  exp_shift_sum(y.data(), x.data(), int64_t(x.size()), 0.0f);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(double(x[i]));
    worst = std::max(worst, std::fabs(double(y[i]) - want) / want);
  }
  EXPECT_LT(worst, 2.0 * 5.96e-8) << "worst relative error";
  // The sum (accumulated in float lanes: callers shift by the maximum, so terms are <= 1).
  double sum = exp_shift_sum(y.data(), x.data(), int64_t(x.size()), -88.0f), want_sum = 0;
  for (float v : x) want_sum += std::exp(double(v) - 88.0);
  EXPECT_NEAR(sum, want_sum, 1e-5 * want_sum);
}

TEST(VecMath, ShiftAndClamps) {
  // 16-lane, 8-lane and scalar paths: the same special values at positions 1, 3 and 17, 19, 35.
  std::vector<float> x(37, 95.0f);
  for (size_t at : {size_t(1), size_t(17), size_t(35)}) x[at] = 101.0f;
  for (size_t at : {size_t(3), size_t(19), size_t(36)}) x[at] = -1000.0f;
  x[0] = 100.0f;
  std::vector<float> y(x.size());
  exp_shift_sum(y.data(), x.data(), int64_t(x.size()), -101.0f);  // softmax-style shift by the max
  for (size_t at : {size_t(1), size_t(17), size_t(35)}) EXPECT_FLOAT_EQ(y[at], 1.0f) << at;
  EXPECT_NEAR(y[0], std::exp(-1.0), 1e-7);
  for (size_t at : {size_t(3), size_t(19), size_t(36)}) {
    EXPECT_LT(y[at], 1e-37f) << at;  // far below the range: tiny, never NaN or negative
    EXPECT_GE(y[at], 0.0f) << at;
  }
}

TEST(VecMath, Sigmoid) {
  std::vector<float> x = {-100.0f, -5.0f, -0.5f, 0.0f, 0.5f, 5.0f, 100.0f, 3.0f, -3.0f, 1.0f, 2.0f};
  for (int i = 0; i < 30; ++i) x.push_back(-7.5f + 0.5f * float(i));  // through every vector width
  std::vector<float> y(x.size());
  sigmoid(y.data(), x.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], 1.0 / (1.0 + std::exp(-double(x[i]))), 1e-7) << x[i];
}
