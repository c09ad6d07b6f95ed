// How tpro's GEMM library was chosen: SGEMM GFLOP/s of OpenBLAS (whichever libopenblas.so.0
// the loader picks) and oneDNN's dnnl_sgemm on the shapes a LoRA step runs, best of 7.
// Built and run by bench/gemm_choice.sh (needs libdnnl-dev; not part of the tpro build).
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

int main() {
  struct Shape {
    int M, N, K;
    const char* what;
  };
  const Shape shapes[] = {{1024, 1536, 576, "gate/up projection, 4x256 tokens"},
                          {1024, 576, 1536, "down projection"},
                          {256, 49152, 576, "LM head, one 256-row chunk"},
                          {64, 256, 64, "attention tile (64 queries x 256 keys)"},
                          {1024, 16, 576, "LoRA A product (rank 16)"}};
  std::printf("%-42s %16s %16s\n", "shape (M x N x K)", "OpenBLAS GF/s", "oneDNN GF/s");
  for (const Shape& s : shapes) {
    std::vector<float> A(size_t(s.M) * s.K, 0.01f), B(size_t(s.N) * s.K, 0.02f), C(size_t(s.M) * s.N);
    double best[2] = {1e9, 1e9};
    for (int lib = 0; lib < 2; ++lib)
      for (int r = 0; r < 7; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        if (lib == 0)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.M, s.N, s.K, 1.f, A.data(), s.K, B.data(), s.K, 0.f,
                      C.data(), s.N);
        else
          dnnl_sgemm('N', 'T', s.M, s.N, s.K, 1.f, A.data(), s.K, B.data(), s.K, 0.f, C.data(), s.N);
        best[lib] = std::min(best[lib], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    const double flop = 2.0 * s.M * s.N * s.K;
    std::printf("%5d x %5d x %4d %-24s %16.1f %16.1f\n", s.M, s.N, s.K, s.what, flop / best[0] / 1e9,
                flop / best[1] / 1e9);
  }
}
