// Dense matrix products for the CPU kernels, through oneDNN's matmul primitive (f32, and bf16
// inputs with f32 accumulation on AMX / AVX512-BF16). Not OpenBLAS: bench/gemm_choice.sh shows
// why (its dynamic-arch build runs SSE3 kernels on CPUs newer than it knows, and honours the
// OPENBLAS_CORETYPE these machines export). Primitives are created once per shape and thread
// and cached; inside an OpenMP parallel region a call runs on the calling thread only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace tpro {

// Row-major C (M,N) = alpha·op(A)·op(B) + beta·C; op(A) is (M,K), op(B) is (K,N), leading
// dimensions as in BLAS row-major. beta == 0 never reads C.
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same with bf16 A and B (raw bit patterns), products accumulated in f32 into f32 C. On a
// CPU without a bf16 matmul the operands are widened to f32 and go through sgemm: same
// inputs, the same result up to summation order.
void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc);

// A fixed B operand (a frozen weight) reordered once into the blocked layout oneDNN's kernels
// read directly, instead of the repacking a plain B costs on every call. The layout is the one
// oneDNN picks for products with rows_hint rows; gemm_packed checks it still applies.
struct PackedB;
// B as op(B) (K,N) with f32 or bf16 values (b_bf16), packed as f32 or bf16 (bf16: for
// products with bf16 A; f32 values are rounded to nearest even); null when oneDNN keeps a
// plain layout for this shape.
std::shared_ptr<const PackedB> pack_b(bool transB, int64_t K, int64_t N, const void* B, int64_t ldb, bool b_bf16,
                                      bool bf16, int64_t rows_hint);
size_t packed_bytes(const PackedB& b);
// The bytes pack_b would hold for these arguments (0: it would return null), without packing.
size_t pack_b_bytes(bool transB, int64_t K, int64_t N, int64_t ldb, bool b_bf16, bool bf16, int64_t rows_hint);
bool packed_is_bf16(const PackedB& b);
// C (M,N) = alpha·A·B + beta·C with A (M,K) row-major (f32, or bf16 when B is). Returns false,
// doing nothing, when no kernel reads this packed layout for M rows: the caller then uses the
// plain B.
bool gemm_packed(int64_t M, float alpha, const void* A, int64_t lda, const PackedB& B, float beta, float* C,
                 int64_t ldc);

// True when oneDNN runs AVX-512 kernels here (the ones that read packed f32 weights).
bool cpu_avx512();

// True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX, as oneDNN reports), i.e. a
// bf16 product is faster than an f32 one.
bool cpu_native_bf16();

// dst[i] = bf16(src[i]) for matmul inputs: round to nearest even (NaN stays NaN), as
// f32_to_bf16() in core/dtype.h, except that a denormal input becomes a zero of its sign (the
// rule of AVX512-BF16's conversion instruction, used where the CPU has it; every path here
// gives the same bits). Vectorised, and split over the threads when large.
void convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
// The same on the calling thread only (small pieces inside a parallel loop).
void convert_f32_to_bf16_here(const float* src, uint16_t* dst, int64_t n);

}  // namespace tpro
