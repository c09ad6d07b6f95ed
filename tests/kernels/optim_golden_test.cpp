// The optimizers besides AdamW against their references, six steps each with weight decay and a
// changing learning rate, from tests/fixtures/train/optim_golden.json (tests/train/
// gen_optim_golden.py): SGD (plain, momentum, Nesterov) and Adagrad against torch.optim in f32,
// Adafactor (transformers' update) and Lion against float64 references, and 8-bit AdamW against
// an f32 operation-by-operation model of bitsandbytes' blockwise kernel, whose codes, block
// scales and parameters must come out bit for bit. Runs on every compiled-in backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/file.h"
#include "kernels/backend.h"
#include "quant/dynamic_map.h"

using namespace tpro;
using nlohmann::json;

namespace {

// f32 against torch's f32 loops: an ulp or two a step. f32 against the float64 references of
// Adafactor and Lion: tpro keeps f32 state, so rounding adds about 6e-8 of the vector's scale
// a step. Each element must be within 1e-6 of its vector's largest magnitude (the observed
// worst is under 2e-7); dropping weight decay, the factoring, update clipping or the momentum
// rule misses by orders of magnitude.
constexpr double kTol = 1e-6;

void expect_close(const std::vector<float>& got, const json& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (const json& w : want) scale = std::max(scale, std::fabs(w.get<double>()));
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = want[i].get<double>();
    if (std::fabs(double(got[i]) - w) > kTol * scale && ++bad <= 3)
      ADD_FAILURE() << what << "[" << i << "]: tpro " << got[i] << ", reference " << w << " (scale " << scale << ")";
  }
  EXPECT_EQ(bad, 0) << what;
}

// 8-bit AdamW: equality of the bits, not closeness.
template <typename T>
void expect_same(const std::vector<T>& got, const json& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const T w = want[i].get<T>();
    if (std::memcmp(&got[i], &w, sizeof(T)) != 0 && ++bad <= 3)
      ADD_FAILURE() << what << "[" << i << "]: tpro " << +got[i] << ", reference " << +w;
  }
  EXPECT_EQ(bad, 0) << what;
}

const json& golden() {
  static const json g = json::parse(read_file(std::string(TPRO_FIXTURES) + "/train/optim_golden.json"));
  return g;
}

// The fixture's tensors laid out as LoRA's are: flat, with factor and block offsets.
std::vector<OptimTensor> fixture_tensors() {
  std::vector<OptimTensor> ts;
  int64_t off = 0, rows = 0, cols = 0, blocks = 0;
  for (const json& s : golden()["shapes"]) {
    OptimTensor t;
    t.matrix = s.size() == 2;
    t.rows = t.matrix ? s[0].get<int64_t>() : 1;
    t.cols = s[t.matrix ? 1 : 0].get<int64_t>();
    t.offset = off, t.row_at = rows, t.col_at = cols, t.block_at = blocks;
    off += t.numel();
    rows += t.matrix ? t.rows : t.cols;  // a vector keeps its full second moment in the row buffer
    cols += t.matrix ? t.cols : 0;
    blocks += t.blocks();
    ts.push_back(t);
  }
  return ts;
}

class OptimGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    be = make_backend(GetParam());
    p0 = golden()["param0"].get<std::vector<float>>();
    n = int64_t(p0.size());
    tensors = fixture_tensors();
  }
  // Runs `step_fn(dp, dg, lr, step)` over the fixture's steps; `check(step, s)` after each.
  template <typename StepFn, typename Check>
  void run(const DeviceArray<float>& dp, StepFn step_fn, const json& steps, Check check) {
    DeviceArray<float> dg(*be, size_t(n));
    dp.upload(p0);
    const json& g = golden();
    ASSERT_EQ(steps.size(), g["grads"].size());
    for (size_t s = 0; s < steps.size(); ++s) {
      SCOPED_TRACE("step " + std::to_string(s + 1));
      dg.upload(g["grads"][s].get<std::vector<float>>());
      step_fn(dp.data(), dg.data(), g["lr"][s].get<double>(), int64_t(s + 1));
      check(s, steps[s]);
    }
  }
  std::vector<float> get(const DeviceArray<float>& a, size_t count) const {
    std::vector<float> h(count);
    a.download(h);
    return h;
  }

  std::unique_ptr<Backend> be;
  std::vector<float> p0;
  int64_t n = 0;
  std::vector<OptimTensor> tensors;
};

}  // namespace

TEST_P(OptimGolden, SgdMatchesTorch) {
  for (const char* name : {"sgd", "sgd_momentum", "sgd_nesterov"}) {
    SCOPED_TRACE(name);
    const json& o = golden()["optimizers"][name];
    SgdHyper h;
    h.momentum = o["hyper"]["momentum"].get<double>();
    h.nesterov = o["hyper"]["nesterov"].get<bool>();
    h.weight_decay = golden()["weight_decay"].get<double>();
    DeviceArray<float> dp(*be, size_t(n)), buf(*be, size_t(n));
    run(dp, [&](float* p, const float* g, double lr, int64_t step) {
      h.lr = lr;
      be->sgd(p, g, buf.data(), n, h, step);
    }, o["steps"], [&](size_t, const json& s) {
      expect_close(get(dp, size_t(n)), s["param"], "param");
      if (s.contains("state") && h.momentum != 0) expect_close(get(buf, size_t(n)), s["state"][0], "momentum_buffer");
    });
  }
}

TEST_P(OptimGolden, AdagradMatchesTorch) {
  const json& o = golden()["optimizers"]["adagrad"];
  AdagradHyper h;
  h.eps = o["hyper"]["eps"].get<double>();
  h.weight_decay = golden()["weight_decay"].get<double>();
  DeviceArray<float> dp(*be, size_t(n)), sum(*be, size_t(n));
  run(dp, [&](float* p, const float* g, double lr, int64_t step) {
    h.lr = lr;
    be->adagrad(p, g, sum.data(), n, h, step);
  }, o["steps"], [&](size_t, const json& s) {
    expect_close(get(dp, size_t(n)), s["param"], "param");
    if (s.contains("state")) expect_close(get(sum, size_t(n)), s["state"][0], "sum");
  });
}

TEST_P(OptimGolden, AdafactorMatchesTransformersUpdate) {
  const json& o = golden()["optimizers"]["adafactor"];
  AdafactorHyper h;
  h.eps1 = o["hyper"]["eps1"].get<double>();
  h.clip_threshold = o["hyper"]["clip_threshold"].get<double>();
  h.decay_rate = o["hyper"]["decay_rate"].get<double>();
  h.weight_decay = golden()["weight_decay"].get<double>();
  const OptimTensor& last = tensors.back();
  const size_t rows = size_t(last.row_at + last.cols), cols = size_t(tensors[1].col_at + tensors[1].cols);
  DeviceArray<float> dp(*be, size_t(n)), row(*be, rows), col(*be, cols);
  run(dp, [&](float* p, const float* g, double lr, int64_t step) {
    h.lr = lr;
    be->adafactor(p, g, row.data(), col.data(), tensors, h, step);
  }, o["steps"], [&](size_t, const json& s) {
    expect_close(get(dp, size_t(n)), s["param"], "param");
    if (s.contains("state")) {
      expect_close(get(row, rows), s["state"][0], "exp_avg_sq_row (and the vector's exp_avg_sq)");
      expect_close(get(col, cols), s["state"][1], "exp_avg_sq_col");
    }
  });
  // The fixture exercises both sides of the update clipping.
  const auto clipped = o["clipped"].get<std::vector<bool>>();
  EXPECT_NE(std::count(clipped.begin(), clipped.end(), true), 0);
  EXPECT_NE(std::count(clipped.begin(), clipped.end(), false), 0);
}

TEST_P(OptimGolden, LionMatchesThePaper) {
  const json& o = golden()["optimizers"]["lion"];
  LionHyper h;
  h.beta1 = o["hyper"]["beta1"].get<double>();
  h.beta2 = o["hyper"]["beta2"].get<double>();
  h.weight_decay = golden()["weight_decay"].get<double>();
  DeviceArray<float> dp(*be, size_t(n)), m(*be, size_t(n));
  std::vector<float> p;
  run(dp, [&](float* pp, const float* g, double lr, int64_t) {
    h.lr = lr;
    be->lion(pp, g, m.data(), n, h);
  }, o["steps"], [&](size_t, const json& s) {
    p = get(dp, size_t(n));
    expect_close(p, s["param"], "param");
    if (s.contains("state")) expect_close(get(m, size_t(n)), s["state"][0], "exp_avg");
  });
  // Element 0 never has a gradient: sign(0) = 0 leaves only the decoupled weight decay.
  double decayed = p0[0];
  for (const json& lr : golden()["lr"]) decayed *= 1.0 - lr.get<double>() * h.weight_decay;
  EXPECT_NEAR(p[0], decayed, 1e-7);
}

TEST_P(OptimGolden, AdamW8bitMatchesBitsandbytesBitForBit) {
  const json& o = golden()["optimizers"]["adamw8bit"];
  AdamWHyper h;
  h.beta1 = o["hyper"]["beta1"].get<double>();
  h.beta2 = o["hyper"]["beta2"].get<double>();
  h.eps = o["hyper"]["eps"].get<double>();
  h.weight_decay = golden()["weight_decay"].get<double>();
  int64_t blocks = 0;
  for (const auto& t : tensors) blocks += t.blocks();
  EXPECT_EQ(blocks, 1 + 2 + 1);  // (3, 40) and the vector fit one block; (20, 13) ends in a short one
  DeviceArray<float> dp(*be, size_t(n)), a1(*be, size_t(blocks)), a2(*be, size_t(blocks));
  DeviceArray<uint8_t> q1(*be, size_t(n)), q2(*be, size_t(n));
  run(dp, [&](float* p, const float* g, double lr, int64_t step) {
    h.lr = lr;
    be->adamw8bit(p, g, q1.data(), q2.data(), a1.data(), a2.data(), tensors, h, step);
  }, o["steps"], [&](size_t, const json& s) {
    std::vector<uint8_t> c1(static_cast<size_t>(n)), c2(static_cast<size_t>(n));
    q1.download(c1), q2.download(c2);
    expect_same(c1, s["state1"], "state1 codes");
    expect_same(c2, s["state2"], "state2 codes");
    expect_same(get(a1, size_t(blocks)), s["absmax1"], "absmax1");
    expect_same(get(a2, size_t(blocks)), s["absmax2"], "absmax2");
    expect_same(get(dp, size_t(n)), s["param"], "param");
  });
}

INSTANTIATE_TEST_SUITE_P(Compiled, OptimGolden, ::testing::ValuesIn(compiled_backends()),
                         [](const auto& info) { return info.param; });

// The maps are the reference's, entry for entry; bitsandbytes builds its own from torch's f32
// linspace, which the generator found within a couple of ulps of these.
TEST(DynamicMap, MatchesTheReferenceBitForBit) {
  expect_same(std::vector<float>(dynamic_map(true).begin(), dynamic_map(true).end()), golden()["map_signed"], "signed");
  expect_same(std::vector<float>(dynamic_map(false).begin(), dynamic_map(false).end()), golden()["map_unsigned"],
              "unsigned");
  EXPECT_LE(golden()["bnb_torch_map_max_ulps"].get<int>(), 2);
  const auto& s = dynamic_map(true);
  EXPECT_EQ(s[127], 0.0f);
  EXPECT_EQ(s[255], 1.0f);
  EXPECT_LT(s[0], -0.99f);
  EXPECT_EQ(dynamic_map(false)[0], 0.0f);
}

TEST(DynamicMap, QuantizeFindsTheNearestCode) {
  for (bool sg : {true, false}) {
    const auto& code = dynamic_map(sg);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(quantize_dynamic(code, code[size_t(i)], sg), i) << sg << " " << i;
    for (int i = 0; i + 1 < 256; ++i) {  // just either side of each midpoint
      const float mid = (code[size_t(i)] + code[size_t(i + 1)]) * 0.5f;
      EXPECT_EQ(quantize_dynamic(code, std::nextafter(mid, -2.0f), sg), i) << sg << " " << i;
      EXPECT_EQ(quantize_dynamic(code, std::nextafter(mid, 2.0f), sg), i + 1) << sg << " " << i;
    }
  }
  EXPECT_EQ(quantize_dynamic(dynamic_map(true), std::nanf(""), true), 0);  // 0/0 of an all-zero block
}
