// Finite-difference helpers for the op gradient checks: L(x) = Σ g ⊙ f(x) for a random g,
// central differences in double, compared elementwise with |a−b| ≤ atol + rtol·|b| and as a
// whole tensor by cosine similarity (catches a sign or scale error hidden by tolerances).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace tpro::test {

inline std::vector<double> randn(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::vector<float> randn_f(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Numeric dL/dx for scalar loss(): perturbs x in place and restores it.
inline std::vector<double> numeric_grad(std::vector<double>& x, const std::function<double()>& loss,
                                        double eps = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double x0 = x[i];
    x[i] = x0 + eps;
    double lp = loss();
    x[i] = x0 - eps;
    double lm = loss();
    x[i] = x0;
    g[i] = (lp - lm) / (2 * eps);
  }
  return g;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

template <typename A, typename B>
void expect_close(const std::vector<A>& got, const std::vector<B>& want, double atol, double rtol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double ab = 0, aa = 0, bb = 0;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double a = double(got[i]), b = double(want[i]);
    ab += a * b;
    aa += a * a;
    bb += b * b;
    if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b))) {
      if (++bad <= 5) {
        ADD_FAILURE() << what << "[" << i << "]: got " << a << ", want " << b;
      }
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements out of tolerance";
  // Elementwise tolerances can hide a wrong sign or scale on tiny values; the angle cannot.
  if (aa > atol * atol * double(got.size()) && bb > atol * atol * double(got.size())) {
    EXPECT_GT(ab / std::sqrt(aa * bb), 1.0 - 1e-6) << what << ": cosine similarity";
  }
}

}  // namespace tpro::test
