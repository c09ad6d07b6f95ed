// How tpro's GEMM library was chosen: GFLOP/s of OpenBLAS SGEMM (whichever libopenblas.so.0
// the loader picks, with the core it reports), oneDNN's dnnl_sgemm, and oneDNN's matmul
// primitive (what tpro uses: kernels/cpu/gemm.h) in f32 and in bf16, on the shapes a LoRA step
// of the SmolLM2-135M benchmark runs, best of 9, data hot in cache.
// Built and run by bench/gemm_choice.sh (needs libopenblas-dev and libdnnl-dev; not part of
// the tpro build).
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdio>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "best_of.h"

extern "C" char* openblas_get_corename();

namespace {

// C (M,N) = A (M,K)·Bᵀ with B stored (N,K), through a matmul primitive of the given type.
double matmul_seconds(dnnl::engine& eng, dnnl::stream& st, int M, int N, int K, dnnl::memory::data_type dt,
                      void* A, void* B, float* C) {
  using dnnl::memory;
  memory::desc ad({M, K}, dt, memory::format_tag::ab), bd({K, N}, dt, memory::format_tag::ba),
      cd({M, N}, memory::data_type::f32, memory::format_tag::ab);
  dnnl::matmul p(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, cd), eng));
  memory am(ad, eng, A), bm(bd, eng, B), cm(cd, eng, C);
  return best_of([&] {
    p.execute(st, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    st.wait();
  });
}

}  // namespace

int main() {
  struct Shape {
    int M, N, K;
    const char* what;
  };
  const Shape shapes[] = {{1024, 1536, 576, "gate/up projection, 4x256 tokens"},
                          {1024, 576, 1536, "down projection"},
                          {1024, 576, 576, "q/o projection"},
                          {256, 49152, 576, "LM head, one 256-row chunk"},
                          {64, 256, 64, "attention tile (64 queries x 256 keys)"},
                          {1024, 16, 576, "LoRA A product (rank 16)"}};
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream st(eng);
  std::printf("OpenBLAS core: %s\n", openblas_get_corename());
  std::printf("%-44s %10s %10s %10s %10s\n", "shape (M x N x K)", "OpenBLAS", "dnnl_sgemm", "matmul f32",
              "matmul bf16");
  for (const Shape& s : shapes) {
    std::vector<float> A(size_t(s.M) * s.K, 0.01f), B(size_t(s.N) * s.K, 0.02f), C(size_t(s.M) * s.N);
    std::vector<uint16_t> A16(A.size(), 0x3c24), B16(B.size(), 0x3ca4);  // 0.01, 0.02 in bf16
    const double t_blas = best_of([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.M, s.N, s.K, 1.f, A.data(), s.K, B.data(), s.K, 0.f,
                  C.data(), s.N);
    });
    const double t_dnnl = best_of([&] {
      dnnl_sgemm('N', 'T', s.M, s.N, s.K, 1.f, A.data(), s.K, B.data(), s.K, 0.f, C.data(), s.N);
    });
    const double t_f32 = matmul_seconds(eng, st, s.M, s.N, s.K, dnnl::memory::data_type::f32, A.data(), B.data(),
                                        C.data());
    const double t_bf16 = matmul_seconds(eng, st, s.M, s.N, s.K, dnnl::memory::data_type::bf16, A16.data(),
                                         B16.data(), C.data());
    const double flop = 2.0 * s.M * s.N * s.K;
    std::printf("%5d x %5d x %4d %-26s %10.1f %10.1f %10.1f %10.1f\n", s.M, s.N, s.K, s.what, flop / t_blas / 1e9,
                flop / t_dnnl / 1e9, flop / t_f32 / 1e9, flop / t_bf16 / 1e9);
  }
}
