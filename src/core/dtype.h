// Element types of tensors on disk and in memory, and the f32 <-> bf16/f16 conversions.
// bf16 rounds to nearest even (as torch does); NaN stays NaN. f16 uses F16C when compiled in.
// Quantized block types (NF4, GGUF K-quants) are described in quant/, not here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace tpro {

enum class DType : uint8_t { F32, F16, BF16, F64, I32, I64, U8, I8 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // safetensors spelling: "F32", "BF16", ...
bool dtype_from_name(std::string_view name, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return uint16_t(u >> 16);
}

float f16_to_f32_soft(uint16_t h);
uint16_t f32_to_f16_soft(float f);

inline float f16_to_f32(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return f16_to_f32_soft(h);
#endif
}

inline uint16_t f32_to_f16(float f) {
#if defined(__F16C__)
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
  return f32_to_f16_soft(f);
#endif
}

// Converts n elements of src (F32, F16 or BF16) to f32.
void to_f32(float* dst, const void* src, DType t, size_t n);
// Converts n f32 values to dst type (F32, F16 or BF16).
void from_f32(void* dst, DType t, const float* src, size_t n);

}  // namespace tpro
