// Dense matrix products for the CPU kernels, through oneDNN's matmul primitive (f32, and bf16
// inputs with f32 accumulation on AMX / AVX512-BF16). Not OpenBLAS: bench/gemm_choice.sh shows
// why (its dynamic-arch build runs SSE3 kernels on CPUs newer than it knows, and honours the
// OPENBLAS_CORETYPE these machines export). Primitives are created once per shape and thread
// and cached; inside an OpenMP parallel region a call runs on the calling thread only.
#pragma once
#include <cstdint>

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

// True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX, as oneDNN reports), i.e. a
// bf16 product is faster than an f32 one.
bool cpu_native_bf16();

// dst[i] = bf16(src[i]), round to nearest even (NaN stays NaN), bit-identical to
// f32_to_bf16() in core/dtype.h; vectorised, and split over the threads when large.
void convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
// The same on the calling thread only (small pieces inside a parallel loop).
void convert_f32_to_bf16_here(const float* src, uint16_t* dst, int64_t n);

}  // namespace tpro
