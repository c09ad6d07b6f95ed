// oneDNN matmul primitives behind a BLAS-like call; see gemm.h.
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

#include <omp.h>

#include <atomic>
#include <optional>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/dtype.h"
#include "core/error.h"

namespace tpro {

namespace {

using dnnl::memory;

// Everything a primitive is specialised on. `par` separates primitives made inside an OpenMP
// parallel region (planned for one thread) from those made outside (planned for the team).
struct Key {
  bool bf16, ta, tb, par;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = uint64_t(k.bf16) | uint64_t(k.ta) << 1 | uint64_t(k.tb) << 2 | uint64_t(k.par) << 3;
    for (int64_t v : {k.M, k.N, k.K, k.lda, k.ldb, k.ldc}) h = (h ^ uint64_t(v)) * 0x100000001b3ull;
    uint32_t a, b;
    std::memcpy(&a, &k.alpha, 4);
    std::memcpy(&b, &k.beta, 4);
    return size_t((h ^ (uint64_t(a) << 32 | b)) * 0x9e3779b97f4a7c15ull);
  }
};

// A primitive with its three memory objects, whose data handles each call re-points (no
// allocation per call: the C API's execute takes a plain argument array).
struct Entry {
  dnnl::matmul prim;
  dnnl::memory a, b, c;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// A row-major (rows, cols) operand with leading dimension ld, seen as op(X) of shape (r, c).
memory::desc operand(int64_t r, int64_t c, bool trans, int64_t ld, memory::data_type dt) {
  return memory::desc({r, c}, dt, trans ? memory::dims{1, ld} : memory::dims{ld, 1});
}

// The cached primitive for k, or null when oneDNN has no implementation (bf16 on an old CPU).
const Entry* entry(const Key& k) {
  constexpr size_t kMaxEntries = 4096;  // shapes of a run are few; bounds odd workloads
  thread_local std::unordered_map<Key, Entry, KeyHash> cache;
  if (auto it = cache.find(k); it != cache.end()) return &it->second;
  if (cache.size() >= kMaxEntries) cache.clear();
  const auto dt = k.bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const memory::desc a = operand(k.M, k.K, k.ta, k.lda, dt), b = operand(k.K, k.N, k.tb, k.ldb, dt);
  const memory::desc c({k.M, k.N}, memory::data_type::f32, memory::dims{k.ldc, 1});
  Entry e;
  dnnl::primitive_attr attr;
  if (k.alpha != 1.0f) attr.set_output_scales(0, {k.alpha});
  if (k.beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(k.beta);
    attr.set_post_ops(po);
  }
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, cpu_engine());
    e.prim = dnnl::matmul(pd);
    e.a = memory(a, cpu_engine(), DNNL_MEMORY_NONE);
    e.b = memory(b, cpu_engine(), DNNL_MEMORY_NONE);
    e.c = memory(c, cpu_engine(), DNNL_MEMORY_NONE);
  } catch (const dnnl::error& err) {
    TPRO_CHECK(k.bf16, "oneDNN refused an f32 matmul ", k.M, "x", k.N, "x", k.K, ": ", err.what());
    return nullptr;
  }
  return &cache.emplace(k, std::move(e)).first->second;
}

void execute(const Entry& e, const void* A, const void* B, float* C) {
  thread_local dnnl::stream stream(cpu_engine());
  dnnl_memory_set_data_handle(e.a.get(), const_cast<void*>(A));
  dnnl_memory_set_data_handle(e.b.get(), const_cast<void*>(B));
  dnnl_memory_set_data_handle(e.c.get(), C);
  const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e.a.get()}, {DNNL_ARG_WEIGHTS, e.b.get()}, {DNNL_ARG_DST, e.c.get()}};
  const dnnl_status_t st = dnnl_primitive_execute(e.prim.get(), stream.get(), 3, args);
  TPRO_CHECK(st == dnnl_success, "oneDNN matmul failed (status ", int(st), ")");
  dnnl_stream_wait(stream.get());
}

// C = beta·C, for products with nothing to sum (K == 0).
void scale_only(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* row = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
  }
}

// The stored rectangle of a bf16 operand widened to dense f32 (leading dimension = its cols).
float* widen(const uint16_t* X, int64_t rows, int64_t cols, int64_t ld, int which) {
  thread_local std::vector<float> buf[2];
  buf[which].resize(size_t(rows * cols));
  float* d = buf[which].data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) d[r * cols + c] = bf16_to_f32(X[r * ld + c]);
  return d;
}

std::atomic<bool> g_bf16_refused{false};

}  // namespace

struct PackedB {
  bool bf16 = false;
  int64_t K = 0, N = 0;
  memory::desc desc;  // the blocked layout
  dnnl::memory mem;   // owns the reordered values
};

namespace {
// The blocked layout oneDNN reads B (K,N) in for rows_hint rows, or nullopt when it reads a
// plain one (nothing to gain) or has no matmul for the shape.
std::optional<memory::desc> packed_layout(bool transB, int64_t K, int64_t N, int64_t ldb, bool b_bf16, bool bf16,
                                          int64_t rows_hint) {
  if (K == 0 || N == 0 || rows_hint <= 0) return std::nullopt;
  const auto dt = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const auto src_dt = b_bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const memory::desc a({rows_hint, K}, dt, memory::format_tag::ab), any({K, N}, dt, memory::format_tag::any);
  const memory::desc c({rows_hint, N}, memory::data_type::f32, memory::format_tag::ab);
  const memory::desc plain = operand(K, N, transB, ldb, dt);
  memory::desc packed;
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, any, c), cpu_engine());
    packed = pd.weights_desc();
  } catch (const dnnl::error&) {
    return std::nullopt;
  }
  if (src_dt == dt && (packed == plain || packed == memory::desc({K, N}, dt, memory::format_tag::ab) ||
                       packed == memory::desc({K, N}, dt, memory::format_tag::ba)))
    return std::nullopt;  // a plain layout: nothing to gain
  return packed;
}
}  // namespace

std::shared_ptr<const PackedB> pack_b(bool transB, int64_t K, int64_t N, const void* B, int64_t ldb, bool b_bf16,
                                      bool bf16, int64_t rows_hint) {
  const std::optional<memory::desc> packed = packed_layout(transB, K, N, ldb, b_bf16, bf16, rows_hint);
  if (!packed) return nullptr;
  const auto src_dt = b_bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  auto p = std::make_shared<PackedB>();
  p->bf16 = bf16;
  p->K = K;
  p->N = N;
  p->desc = *packed;
  p->mem = dnnl::memory(*packed, cpu_engine());
  dnnl::memory src(operand(K, N, transB, ldb, src_dt), cpu_engine(), const_cast<void*>(B));
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(src, p->mem).execute(stream, src, p->mem);
  stream.wait();
  return p;
}

size_t pack_b_bytes(bool transB, int64_t K, int64_t N, int64_t ldb, bool b_bf16, bool bf16, int64_t rows_hint) {
  const std::optional<memory::desc> packed = packed_layout(transB, K, N, ldb, b_bf16, bf16, rows_hint);
  return packed ? packed->get_size() : 0;
}

size_t packed_bytes(const PackedB& b) { return b.desc.get_size(); }
bool packed_is_bf16(const PackedB& b) { return b.bf16; }

bool gemm_packed(int64_t M, float alpha, const void* A, int64_t lda, const PackedB& B, float beta, float* C,
                 int64_t ldc) {
  if (M == 0) return true;
  // One cache entry per (packed matrix, shape); null = no kernel reads the layout for this M.
  struct PKey {
    const PackedB* b;
    bool par;
    int64_t M, lda, ldc;
    float alpha, beta;
    bool operator==(const PKey&) const = default;
  };
  struct PHash {
    size_t operator()(const PKey& k) const {
      uint64_t h = uint64_t(reinterpret_cast<uintptr_t>(k.b)) * 0x9e3779b97f4a7c15ull ^ uint64_t(k.par);
      for (int64_t v : {k.M, k.lda, k.ldc}) h = (h ^ uint64_t(v)) * 0x100000001b3ull;
      uint32_t a, b;
      std::memcpy(&a, &k.alpha, 4);
      std::memcpy(&b, &k.beta, 4);
      return size_t(h ^ (uint64_t(a) << 32 | b));
    }
  };
  thread_local std::unordered_map<PKey, std::unique_ptr<Entry>, PHash> cache;
  const PKey key{&B, omp_in_parallel() != 0, M, lda, ldc, alpha, beta};
  auto it = cache.find(key);
  if (it != cache.end() && it->second && it->second->b.get_desc() != B.desc) {  // a new matrix at a freed address
    cache.erase(it);
    it = cache.end();
  }
  if (it == cache.end()) {
    if (cache.size() >= 4096) cache.clear();
    const auto dt = B.bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const memory::desc a({M, B.K}, dt, memory::dims{lda, 1});
    const memory::desc c({M, B.N}, memory::data_type::f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
      dnnl::post_ops po;
      po.append_sum(beta);
      attr.set_post_ops(po);
    }
    std::unique_ptr<Entry> e;
    try {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, B.desc, c), attr, cpu_engine());
      e = std::make_unique<Entry>();
      e->prim = dnnl::matmul(pd);
      e->a = memory(a, cpu_engine(), DNNL_MEMORY_NONE);
      e->b = memory(B.desc, cpu_engine(), DNNL_MEMORY_NONE);
      e->c = memory(c, cpu_engine(), DNNL_MEMORY_NONE);
    } catch (const dnnl::error&) {
      e.reset();
    }
    it = cache.emplace(key, std::move(e)).first;
  }
  if (!it->second) return false;
  execute(*it->second, A, B.mem.get_data_handle(), C);
  return true;
}

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, C, ldc);
  const Key k{false, transA, transB, omp_in_parallel() != 0, M, N, K, lda, ldb, ldc, alpha, beta};
  execute(*entry(k), A, B, C);
}

void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, C, ldc);
  if (!g_bf16_refused.load(std::memory_order_relaxed)) {
    const Key k{true, transA, transB, omp_in_parallel() != 0, M, N, K, lda, ldb, ldc, alpha, beta};
    if (const Entry* e = entry(k)) return execute(*e, A, B, C);
    g_bf16_refused.store(true, std::memory_order_relaxed);
  }
  const int64_t ar = transA ? K : M, ac = transA ? M : K, br = transB ? N : K, bc = transB ? K : N;
  const float* a = widen(A, ar, ac, lda, 0);
  const float* b = widen(B, br, bc, ldb, 1);
  sgemm(transA, transB, M, N, K, alpha, a, ac, b, bc, beta, C, ldc);
}

namespace {
// Whether oneDNN runs kernels of (at least) the given ISA here.
bool effective_isa_has(dnnl::cpu_isa want) {
  const auto isa = uint32_t(dnnl::get_effective_cpu_isa()), w = uint32_t(want);
  return (isa & w) == w;
}
}  // namespace

bool cpu_avx512() {
  static const bool avx512 = effective_isa_has(dnnl::cpu_isa::avx512_core);
  return avx512;
}

bool cpu_native_bf16() {
  static const bool native = effective_isa_has(dnnl::cpu_isa::avx512_core_bf16);
  return native;
}

namespace {
// The scalar rule of every path below: round to nearest even, NaN stays NaN, a denormal input
// becomes a zero of its sign (what AVX512-BF16's vcvtne2ps2bf16 does).
inline uint16_t matmul_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0) return uint16_t((u >> 16) & 0x8000u);
  return f32_to_bf16(f);
}
}  // namespace

void convert_f32_to_bf16_here(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512BF16__) && defined(__AVX512VL__)
  for (; i + 32 <= n; i += 32) {
    const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(dst + i, reinterpret_cast<const __m512i&>(h));
  }
#elif defined(__AVX512F__)
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
  const __m512i sign = _mm512_set1_epi32(0x8000);
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(src + i);
    const __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(hi, one))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    const __mmask16 denormal = _mm512_testn_epi32_mask(u, inf);  // exponent bits all zero
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, quiet));
    r = _mm512_mask_mov_epi32(r, denormal, _mm512_and_si512(hi, sign));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(r));
  }
#elif defined(__AVX2__)
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
  const __m256i sign = _mm256_set1_epi32(0x8000), zero = _mm256_setzero_si256();
  auto round8 = [&](const float* p) {
    const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_srli_epi32(u, 16);
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(hi, one))), 16);
    // (u & 0x7fffffff) > inf as signed compare is exact: both sides are non-negative.
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    const __m256i denormal = _mm256_cmpeq_epi32(_mm256_and_si256(u, inf), zero);
    const __m256i rn = _mm256_blendv_epi8(r, _mm256_or_si256(hi, quiet), nan);
    return _mm256_blendv_epi8(rn, _mm256_and_si256(hi, sign), denormal);
  };
  for (; i + 16 <= n; i += 16) {
    const __m256i packed = _mm256_packus_epi32(round8(src + i), round8(src + i + 8));  // lanes interleaved
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_permute4x64_epi64(packed, 0xD8));
  }
#endif
  for (; i < n; ++i) dst[i] = matmul_bf16(src[i]);
}

void convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (worth_parallel(n) && chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kChunk;
    convert_f32_to_bf16_here(src + i0, dst + i0, std::min(kChunk, n - i0));
  }
}

}  // namespace tpro
