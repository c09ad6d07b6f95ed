// Times tpro's gemm_bf16 / sgemm (kernels/cpu/gemm.h) on the products of a 4 × 256 SmolLM2-135M
// LoRA step, hot cache, best of 5 × 10 calls: the frozen projections separate against merged
// (q/k/v as one 960-column product, gate/up as one 3072-column product), and the rank-16 LoRA
// products with f32 and with bf16 operands. Values are constants: only the time matters.
// Run: bench/product_shapes.sh
#include <cstdio>
#include <vector>

#include "best_of.h"
#include "kernels/cpu/gemm.h"

using namespace tpro;

namespace {

template <typename F>
void time_it(const char* name, double flops, F f) {
  for (int i = 0; i < 3; ++i) f();
  const double best = best_of(f, 5, 10);
  std::printf("%-44s %9.1f us %8.1f GFLOP/s\n", name, best * 1e6, flops / best * 1e-9);
}

}  // namespace

int main() {
  const int64_t N = 1024, D = 576, KV = 192, F = 1536, R = 16;
  std::vector<uint16_t> x(N * 2 * F, 0x3f80), w(2 * F * F, 0x3c00), dy(N * 2 * F, 0x3c00);
  std::vector<uint16_t> u16(N * R, 0x3c00), a16(R * F, 0x3c00), b16(F * R, 0x3c00);
  std::vector<float> out(N * 2 * F), u(N * R, 1.0f), Bf(F * R, 0.01f), Af(R * F, 0.01f), dB(F * R), dA(R * F),
      du(N * R);
  // out (N, O) = x·Wᵀ and dx (N, I) (+)= dy·W, as linear_forward / linear_backward call them.
  auto fwd = [&](int64_t O, int64_t I) {
    gemm_bf16(false, true, N, O, I, 1.0f, x.data(), I, w.data(), I, 0.0f, out.data(), O);
  };
  auto bwd = [&](int64_t O, int64_t I, float beta) {
    gemm_bf16(false, false, N, I, O, 1.0f, dy.data(), O, w.data(), I, beta, out.data(), I);
  };
  std::printf("frozen projections, bf16, N = %lld rows\n", (long long)N);
  const double qkv = 2.0 * N * D * (D + 2 * KV), gu = 2.0 * N * D * 2 * F;
  time_it("forward q, k, v separate", qkv, [&] { fwd(D, D), fwd(KV, D), fwd(KV, D); });
  time_it("forward q|k|v merged", qkv, [&] { fwd(D + 2 * KV, D); });
  time_it("forward gate, up separate", gu, [&] { fwd(F, D), fwd(F, D); });
  time_it("forward gate|up merged", gu, [&] { fwd(2 * F, D); });
  time_it("backward q, k, v separate (accumulating)", qkv, [&] { bwd(D, D, 0.0f), bwd(KV, D, 1.0f), bwd(KV, D, 1.0f); });
  time_it("backward q|k|v merged", qkv, [&] { bwd(D + 2 * KV, D, 0.0f); });
  time_it("backward gate, up separate (accumulating)", gu, [&] { bwd(F, D, 0.0f), bwd(F, D, 1.0f); });
  time_it("backward gate|up merged", gu, [&] { bwd(2 * F, D, 0.0f); });

  const int64_t shapes[][2] = {{D, D}, {D, KV}, {D, F}, {F, D}};  // (in, out): q/o, k/v, gate/up, down
  for (const auto& sh : shapes) {
    const int64_t I = sh[0], O = sh[1];
    const double fo = 2.0 * N * O * R, fi = 2.0 * N * I * R;
    std::printf("LoRA rank %lld, in %lld, out %lld\n", (long long)R, (long long)I, (long long)O);
    time_it("u = x·Aᵀ (bf16)", fi, [&] { gemm_bf16(false, true, N, R, I, 1.0f, x.data(), I, a16.data(), I, 0.0f, u.data(), R); });
    time_it("out += s·u·Bᵀ (f32, as now)", fo, [&] { sgemm(false, true, N, O, R, 2.0f, u.data(), R, Bf.data(), R, 1.0f, out.data(), O); });
    time_it("out += s·u·Bᵀ (bf16)", fo, [&] { gemm_bf16(false, true, N, O, R, 2.0f, u16.data(), R, b16.data(), R, 1.0f, out.data(), O); });
    time_it("dB += s·dyᵀ·u (bf16)", fo, [&] { gemm_bf16(true, false, O, R, N, 2.0f, dy.data(), O, u16.data(), R, 1.0f, dB.data(), R); });
    time_it("du = s·dy·B (bf16)", fo, [&] { gemm_bf16(false, false, N, R, O, 2.0f, dy.data(), O, b16.data(), R, 0.0f, du.data(), R); });
    time_it("dA += duᵀ·x (bf16)", fi, [&] { gemm_bf16(true, false, R, I, N, 1.0f, u16.data(), R, x.data(), I, 1.0f, dA.data(), I); });
    time_it("dx += du·A (f32, as now)", fi, [&] { sgemm(false, false, N, I, R, 1.0f, du.data(), R, Af.data(), I, 1.0f, out.data(), I); });
    time_it("dx += du·A (bf16)", fi, [&] { gemm_bf16(false, false, N, I, R, 1.0f, u16.data(), R, a16.data(), I, 1.0f, out.data(), I); });
  }
  return 0;
}
