// NF4 (4-bit NormalFloat) with double quantization, as in QLoRA (Dettmers et al. 2023) and
// bitsandbytes: blocks of 64 weights share an absmax; each weight is the nearest of the 16 NF4
// codes of x/absmax, two per byte (first element in the high nibble). The f32 absmax values are
// double-quantized: their mean is subtracted, then groups of 256 are quantized to 8 bits with
// bitsandbytes' signed dynamic map and one f32 scale per group. The layout matches
// bitsandbytes' nested quant_state (absmax u8, nested_absmax f32, nested_quant_map, offset).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tpro {

constexpr int64_t kNf4Block = 64;          // weights per absmax
constexpr int64_t kNf4AbsmaxGroup = 256;   // absmax values per f32 second-level scale

// The 16 NF4 code values of bitsandbytes (create_normal_map(0.9677083, use_extra_value)).
extern const float kNf4Codes[16];

// Double-quantized absmax of block b = code[qabsmax[b]] * absmax_scale[b / 256] + offset.
struct Nf4Aux {
  const uint8_t* qabsmax = nullptr;     // (n_blocks) 8-bit codes of absmax - offset
  const float* absmax_scale = nullptr;  // (ceil(n_blocks / 256)) max |absmax - offset| per group
  const float* code = nullptr;          // (256) the 8-bit map, ascending (nf4_dynamic_map())
  float offset = 0;                     // mean of all absmax values
};

// Decision thresholds between adjacent codes (bitsandbytes' dQuantizeNF4 constants).
extern const float kNf4Thresholds[15];

// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 256
// ascending values in [-0.993, 1], computed once in double and rounded to f32.
const float* nf4_dynamic_map();

// Nearest NF4 code of x in [-1, 1]; a value exactly between two codes takes the lower one
// (bitsandbytes' decision tree compares x > midpoint).
uint8_t nf4_encode(float x);
// Nearest entry of an ascending 256-value map; ties take the lower entry.
uint8_t dynamic_map_encode(const float* code, float x);

// Owning storage of one NF4 tensor's aux arrays.
struct Nf4Storage {
  std::vector<uint8_t> qabsmax;
  std::vector<float> absmax_scale;
  std::vector<float> code;  // empty: nf4_dynamic_map(); else 256 values (e.g. a bitsandbytes file's)
  float offset = 0;
  Nf4Aux aux() const;  // points into this storage
};

// First pass: packs n weights (n % 64 == 0) into n/2 bytes and writes the f32 absmax of each
// of the n/64 blocks. An all-zero block is stored with the zero code so it decodes to exact 0.
void nf4_quantize_blocks(const float* x, int64_t n, uint8_t* packed, float* absmax);
// Second pass: double-quantizes all n_blocks absmax values of a tensor.
void nf4_double_quantize(const float* absmax, int64_t n_blocks, Nf4Storage* out);

float nf4_block_absmax(const Nf4Aux& aux, int64_t block);

// y (n) <- n weights (n % 64 == 0) starting at block block0; packed points at that block.
void nf4_dequantize_ref(const uint8_t* packed, const Nf4Aux& aux, int64_t block0, int64_t n, float* y);
void nf4_dequantize(const uint8_t* packed, const Nf4Aux& aux, int64_t block0, int64_t n, float* y);

}  // namespace tpro
