// AdamW and gradient clipping against torch: ten steps of torch.optim.AdamW (weight decay, bias
// correction) after torch.nn.utils.clip_grad_norm_, from tests/fixtures/train/adamw_golden.json
// (tests/train/gen_adamw_golden.py, float32), on every compiled-in backend. tpro runs the
// Backend's l2_norm, scale and adamw on device buffers as train/optimizer_step.cpp chains them:
// clip only above max_grad_norm, by max / (norm + 1e-6). Parameters and both moments are
// downloaded and compared after every step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/file.h"
#include "kernels/backend.h"

using namespace tpro;
using nlohmann::json;

namespace {

// Both sides are f32 running the same operations, torch's clip factor and norm in f32 where
// tpro sums the norm in double: they differ by an ulp or two a step. The moments are sums of
// terms of both signs, so an element that nearly cancels has a large relative error but not a
// large one against the vector's scale: each element must be within 1e-6 of the largest
// magnitude in its vector (about 8 f32 ulps; the observed worst is 2.2e-7). Computing 1 - beta2
// in f32 (1.3e-5 off), dropping bias correction, decay or clipping fails it by orders of magnitude.
constexpr double kTol = 1e-6;

void expect_close(const std::vector<float>& got, const json& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (const json& w : want) scale = std::max(scale, std::fabs(w.get<double>()));
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = want[i].get<double>();
    if (std::fabs(double(got[i]) - w) > kTol * scale && ++bad <= 3)
      ADD_FAILURE() << what << "[" << i << "]: tpro " << got[i] << ", torch " << w << " (scale " << scale << ")";
  }
  EXPECT_EQ(bad, 0) << what;
}

std::vector<float> floats(const json& a) { return a.get<std::vector<float>>(); }

}  // namespace

class AdamWGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(AdamWGolden, TenClippedStepsMatchTorch) {
  const std::unique_ptr<Backend> be = make_backend(GetParam());
  const json g = json::parse(read_file(std::string(TPRO_FIXTURES) + "/train/adamw_golden.json"));
  const int64_t n = g["n"].get<int64_t>();
  const double max_norm = g["max_grad_norm"].get<double>();
  std::vector<float> p = floats(g["param0"]), m(size_t(n), 0.0f), v(size_t(n), 0.0f);
  ASSERT_EQ(int64_t(p.size()), n);
  AdamWHyper h;
  h.beta1 = g["beta1"].get<double>();
  h.beta2 = g["beta2"].get<double>();
  h.eps = g["eps"].get<double>();
  h.weight_decay = g["weight_decay"].get<double>();
  const size_t bytes = size_t(n) * sizeof(float);
  DeviceArray<float> dp(*be, size_t(n)), dm(*be, size_t(n)), dv(*be, size_t(n)), dg(*be, size_t(n));
  dp.upload(p);
  int clipped = 0;
  int64_t step = 0;
  for (const json& s : g["steps"]) {
    ++step;
    SCOPED_TRACE("step " + std::to_string(step));
    std::vector<float> grad = floats(s["grad"]);
    ASSERT_EQ(int64_t(grad.size()), n);
    be->upload(dg.data(), grad.data(), bytes);
    const double norm = be->l2_norm(dg.data(), n);
    EXPECT_NEAR(norm, s["grad_norm"].get<double>(), 1e-6 * norm);
    EXPECT_EQ(norm > max_norm, s["clipped"].get<bool>());
    if (norm > max_norm) {
      be->scale(dg.data(), n, float(max_norm / (norm + 1e-6)));
      ++clipped;
    }
    h.lr = s["lr"].get<double>();
    be->adamw(dp.data(), dg.data(), dm.data(), dv.data(), n, h, step);
    dp.download(p), dm.download(m), dv.download(v);
    expect_close(m, s["m"], "m");
    expect_close(v, s["v"], "v");
    expect_close(p, s["param"], "param");
  }
  EXPECT_EQ(step, 10);
  EXPECT_EQ(clipped, 4);  // the fixture mixes clipped and unclipped steps
  // Element 0 never had a gradient: only the decoupled weight decay moved it.
  double decayed = g["param0"][0].get<double>();
  for (const json& s : g["steps"]) decayed *= 1.0 - s["lr"].get<double>() * h.weight_decay;
  EXPECT_NEAR(p[0], decayed, 1e-7);
}

INSTANTIATE_TEST_SUITE_P(Compiled, AdamWGolden, ::testing::ValuesIn(compiled_backends()),
                         [](const auto& info) { return info.param; });
