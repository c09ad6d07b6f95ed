// ggml block formats tpro computes with: Q8_0 and Q4_0 (blocks of 32) and the K-quants Q4_K
// and Q6_K (super-blocks of 256). Layouts, dequantization and the reference quantizers
// (round-to-nearest search, no importance matrix) follow ggml's ggml-common.h/ggml-quants.c;
// scales are IEEE fp16 stored as raw bits. Other ggml types are deliberately not decoded here.
// All functions take n = number of elements, a multiple of the block size.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tpro {

constexpr int64_t kQK8_0 = 32;
constexpr int64_t kQK4_0 = 32;
constexpr int64_t kQK_K = 256;

struct BlockQ8_0 {
  uint16_t d;      // fp16 scale: x = d * q
  int8_t qs[32];   // quants
};
struct BlockQ4_0 {
  uint16_t d;      // fp16 scale: x = d * (q - 8)
  uint8_t qs[16];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_K {
  uint16_t d;          // fp16 super-block scale for the 6-bit sub-block scales
  uint16_t dmin;       // fp16 super-block scale for the 6-bit sub-block mins
  uint8_t scales[12];  // 8 (scale, min) pairs of 6 bits, packed (see get_scale_min_k4)
  uint8_t qs[128];     // 4-bit quants: per 64 elements, 32 bytes (low nibbles, then high)
};
struct BlockQ6_K {
  uint8_t ql[128];    // low 4 bits of the quants
  uint8_t qh[64];     // high 2 bits of the quants
  int8_t scales[16];  // 8-bit scale per 16 elements
  uint16_t d;         // fp16 super-block scale
};
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ6_K) == 210);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Scalar references (the oracles).
void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_K_ref(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q6_K_ref(const BlockQ6_K* x, float* y, int64_t n);

// Fast versions (AVX2 when compiled in), bit-identical to the references.
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t n);
void f16_row_to_f32(const uint16_t* x, float* y, int64_t n);
void bf16_row_to_f32(const uint16_t* x, float* y, int64_t n);

// ggml's reference quantizers (quantize_row_*_ref), byte-identical output.
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_K_ref(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q6_K_ref(const float* x, BlockQ6_K* y, int64_t n);

}  // namespace tpro
