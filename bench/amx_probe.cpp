// How far oneDNN's bf16 matmul is from this CPU's AMX rate, and whether a plain tile kernel
// does better: (1) the raw TDPBF16PS rate (register tiles only, no memory), per thread and on
// every thread; (2) the same 2 x 2-tile kernel as (3) on operands that stay in L1/L2 (32 or 256
// rows of A against one 32-column B panel, K = 576), which is what tile loads allow; (3) on the
// frozen-projection shapes of a 4 x 256 LoRA step, oneDNN's matmul
// (what tpro uses) against a naive AMX kernel (2 x 2 accumulator tiles over 32 x 32 blocks of C,
// B packed once into VNNI tiles, rows split between threads), best of 9, alternating, with the
// largest difference between the two results. An experiment, not part of tpro: built and run
// by bench/amx_probe.sh (Linux on an AMX CPU, libdnnl-dev).
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

namespace {

constexpr int kArchReqXcompPerm = 0x1023;  // arch_prctl: ask the kernel for the AMX tile state
constexpr int kXfeatureXtiledata = 18;

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Eight 16 x 64-byte tiles. Loaded on every call: oneDNN's kernels load their own and release.
void configure_tiles() {
  TileConfig c;
  for (int i = 0; i < 8; ++i) c.colsb[i] = 64, c.rows[i] = 16;
  _tile_loadconfig(&c);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// GFLOP/s of TDPBF16PS on register tiles, this thread.
double raw_tile_rate() {
  configure_tiles();
  alignas(64) static thread_local uint16_t zeros[16 * 32] = {};
  _tile_loadd(4, zeros, 64);
  _tile_loadd(5, zeros, 64);
  _tile_loadd(6, zeros, 64);
  _tile_loadd(7, zeros, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const long n = 10'000'000;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  const double s = seconds_since(t0);
  _tile_release();
  return 4.0 * n * 16 * 16 * 32 * 2 / s / 1e9;
}

// B (K, N) = Wᵀ, W (N, K) row-major, into VNNI tiles: per 32 columns and 32 k, two tiles of 16
// rows (k pairs) x 16 columns x 2.
std::vector<uint16_t> pack_vnni(const uint16_t* W, int N, int K) {
  std::vector<uint16_t> p(size_t(N) * K);
  for (int nb = 0; nb < N / 32; ++nb)
    for (int kb = 0; kb < K / 32; ++kb) {
      uint16_t* d = p.data() + (size_t(nb) * (K / 32) + kb) * 1024;
      for (int t = 0; t < 2; ++t)
        for (int kp = 0; kp < 16; ++kp)
          for (int n = 0; n < 16; ++n)
            for (int j = 0; j < 2; ++j)
              d[t * 512 + kp * 32 + n * 2 + j] = W[size_t(nb * 32 + t * 16 + n) * K + kb * 32 + 2 * kp + j];
    }
  return p;
}

// C (M, N) f32 = A (M, K) bf16 · B; M, N multiples of 32, K of 32.
void tile_gemm(int M, int N, int K, const uint16_t* A, const uint16_t* Bp, float* C) {
  const int KB = K / 32;
  constexpr int kRowsPerPanel = 256;
#pragma omp parallel
  {
    configure_tiles();
    const int T = omp_get_num_threads(), t = omp_get_thread_num();
    const int per = (M / 32 + T - 1) / T * 32, m0 = std::min(M, t * per), m1 = std::min(M, m0 + per);
    for (int mc = m0; mc < m1; mc += kRowsPerPanel)
      for (int nb = 0; nb < N / 32; ++nb) {
        const uint16_t* b = Bp + size_t(nb) * KB * 1024;
        for (int m = mc; m < std::min(m1, mc + kRowsPerPanel); m += 32) {
          const uint16_t* a = A + size_t(m) * K;
          float* c = C + size_t(m) * N + nb * 32;
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
          for (int kb = 0; kb < KB; ++kb) {
            _tile_loadd(4, a + kb * 32, K * 2);
            _tile_loadd(6, b + kb * 1024, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_loadd(7, b + kb * 1024 + 512, 64);
            _tile_dpbf16ps(1, 4, 7);
            _tile_loadd(5, a + 16 * K + kb * 32, K * 2);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
          _tile_stored(0, c, N * 4);
          _tile_stored(1, c + 16, N * 4);
          _tile_stored(2, c + 16 * N, N * 4);
          _tile_stored(3, c + 16 * N + 16, N * 4);
        }
      }
    _tile_release();
  }
}

// GFLOP/s of the tile kernel's inner loop on one thread, A (rows, 576) and one B panel resident.
double resident_rate(int rows) {
  const int K = 576;
  std::vector<uint16_t> A(size_t(rows) * K, 0x3f80), B(size_t(32) * K, 0x3f80);
  std::vector<float> C(size_t(rows) * 32);
  configure_tiles();
  const long reps = 20000L * 32 / rows;
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < reps; ++it)
    for (int m = 0; m < rows; m += 32) {
      const uint16_t* a = A.data() + size_t(m) * K;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int kb = 0; kb < K / 32; ++kb) {
        _tile_loadd(4, a + kb * 32, K * 2);
        _tile_loadd(6, B.data() + kb * 1024, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, B.data() + kb * 1024 + 512, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a + 16 * K + kb * 32, K * 2);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      float* c = C.data() + size_t(m) * 32;
      _tile_stored(0, c, 128);
      _tile_stored(1, c + 16, 128);
      _tile_stored(2, c + 16 * 32, 128);
      _tile_stored(3, c + 16 * 32 + 16, 128);
    }
  const double s = seconds_since(t0);
  _tile_release();
  return 2.0 * reps * rows * 32 * K / s / 1e9;
}

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

}  // namespace

int main() {
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    std::printf("this kernel/CPU grants no AMX tile state\n");
    return 1;
  }
  std::printf("raw TDPBF16PS: %.0f GFLOP/s on one thread\n", raw_tile_rate());
  double total = 0;
#pragma omp parallel reduction(+ : total)
  total += raw_tile_rate();
  std::printf("raw TDPBF16PS: %.0f GFLOP/s on %d threads together\n", total, omp_get_max_threads());

  for (int rows : {32, 256}) std::printf("tile kernel, %d rows of A resident: %.0f GFLOP/s on one thread\n", rows, resident_rate(rows));

  using dnnl::memory;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream st(eng);
  struct Shape {
    int M, N, K;
    const char* what;
  };
  const Shape shapes[] = {{1024, 1536, 576, "gate/up forward"},
                          {1024, 576, 1536, "down forward"},
                          {1024, 576, 576, "q/o forward"},
                          {1024, 192, 576, "k/v forward"},
                          {256, 49152, 576, "LM-head chunk"}};
  std::printf("%-32s %12s %12s %10s\n", "shape (M x N x K)", "oneDNN", "tile kernel", "max diff");
  for (const Shape& s : shapes) {
    std::vector<uint16_t> A(size_t(s.M) * s.K), W(size_t(s.N) * s.K);
    for (size_t i = 0; i < A.size(); ++i) A[i] = to_bf16(std::sin(float(i) * 0.37f));
    for (size_t i = 0; i < W.size(); ++i) W[i] = to_bf16(std::cos(float(i) * 0.11f));
    const std::vector<uint16_t> Bp = pack_vnni(W.data(), s.N, s.K);
    std::vector<float> C1(size_t(s.M) * s.N), C2(C1.size());
    memory::desc ad({s.M, s.K}, memory::data_type::bf16, memory::format_tag::ab),
        bd({s.K, s.N}, memory::data_type::bf16, memory::format_tag::ba),
        cd({s.M, s.N}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, cd), eng));
    memory am(ad, eng, A.data()), bm(bd, eng, W.data()), cm(cd, eng, C1.data());
    double t_dnnl = 1e9, t_tile = 1e9;
    for (int r = 0; r < 9; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      mm.execute(st, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
      st.wait();
      t_dnnl = std::min(t_dnnl, seconds_since(t0));
      t0 = std::chrono::steady_clock::now();
      tile_gemm(s.M, s.N, s.K, A.data(), Bp.data(), C2.data());
      t_tile = std::min(t_tile, seconds_since(t0));
    }
    double diff = 0;
    for (size_t i = 0; i < C1.size(); ++i) diff = std::max(diff, double(std::fabs(C1[i] - C2[i])));
    const double flop = 2.0 * s.M * s.N * s.K;
    std::printf("%5d x %5d x %4d %-14s %12.0f %12.0f %10.2g\n", s.M, s.N, s.K, s.what, flop / t_dnnl / 1e9,
                flop / t_tile / 1e9, diff);
  }
}
