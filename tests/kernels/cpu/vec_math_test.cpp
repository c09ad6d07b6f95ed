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
  std::vector<float> x = {100.0f, 101.0f, 99.0f, -1000.0f, 100.5f, 98.0f, 97.0f, 96.0f, 95.0f, 101.0f};
  std::vector<float> y(x.size());
  exp_shift_sum(y.data(), x.data(), int64_t(x.size()), -101.0f);  // softmax-style shift by the max
  EXPECT_FLOAT_EQ(y[1], 1.0f);
  EXPECT_NEAR(y[0], std::exp(-1.0), 1e-7);
  EXPECT_LT(y[3], 1e-37f);  // far below the range: tiny, never NaN or negative
  EXPECT_GE(y[3], 0.0f);
}

TEST(VecMath, Sigmoid) {
  std::vector<float> x = {-100.0f, -5.0f, -0.5f, 0.0f, 0.5f, 5.0f, 100.0f, 3.0f, -3.0f, 1.0f, 2.0f};
  std::vector<float> y(x.size());
  sigmoid(y.data(), x.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], 1.0 / (1.0 + std::exp(-double(x[i]))), 1e-7) << x[i];
}
