// The 8-bit dynamic quantization maps of bitsandbytes' optimizers (Dettmers 2016, "8-Bit
// Approximations for Parallelism in Deep Learning"; bitsandbytes functional.create_dynamic_map
// with max_exponent_bits 7, total_bits 8) and its nearest-code search (the CUDA kernels'
// quantize_2D). Values are defined in double and rounded once to f32; torch's float32
// linspace makes bitsandbytes' own table differ from it by at most an ulp in a few entries.
#pragma once
#include <array>
#include <cstdint>

namespace tpro {

// 256 ascending codes: signed spans [-0.99.., 1] with 0 at index 127 (for first moments),
// unsigned spans [0, 1] with 0 at index 0 (for second moments). 1.0 is the last entry.
const std::array<float, 256>& dynamic_map(bool is_signed);

// bitsandbytes' quantize_2D: a 7-level binary search from index 127, then the nearer of the
// two neighbours by their f32 midpoint. NaN (0/0 of an all-zero block) gives index 0. The
// caller fixes the sign of signed codes as bitsandbytes does (see cpu/adamw8bit.cpp).
uint8_t quantize_dynamic(const std::array<float, 256>& code, float x, bool is_signed);

}  // namespace tpro
