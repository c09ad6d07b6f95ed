// NF4 + double quantization: code tables, quantizers and the scalar reference dequantizer.
// References: QLoRA (arXiv 2305.14314) sections 3-4; bitsandbytes functional.py
// (create_normal_map, create_dynamic_map, quantize_4bit with compress_statistics) and its
// kernels' dQuantizeNF4 / dQuantize (nearest value, strict '>' against midpoints).
// The AVX2 dequantizer lives in dequant_fast.cpp with the other fast paths.
#include "quant/nf4.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tpro {

const float kNf4Codes[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

// bitsandbytes' dQuantizeNF4 decision-tree constants: midpoints of the double-precision normal
// map written as f32 literals. Four of them are 1 ulp off the midpoints of the f32 codes, so
// they are kept verbatim rather than recomputed.
const float kNf4Thresholds[15] = {
    -0.8480964004993439f,  -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f,   0.2035212516784668f,  0.2920137718319893f,  0.3893125355243683f,
    0.5016634166240692f,   0.6427869200706482f,  0.8614784181118011f,
};

namespace {

// Dynamic map: for exponent i = 0..6 the 2^i midpoints of linspace(0.1, 1, 2^i + 1) scaled by
// 10^(i-6), both signs; then 0 and 1; sorted. 127 + 127 + 2 = 256 values.
struct DynamicMap {
  float v[256];
  DynamicMap() {
    std::vector<double> d;
    for (int i = 0; i < 7; ++i) {
      const int n = (1 << i) + 1;
      for (int k = 0; k + 1 < n; ++k) {
        const double lo = 0.1 + 0.9 * k / (n - 1), hi = 0.1 + 0.9 * (k + 1) / (n - 1);
        const double mean = (lo + hi) / 2.0;
        d.push_back(std::pow(10.0, i - 6) * mean);
        d.push_back(-std::pow(10.0, i - 6) * mean);
      }
    }
    d.push_back(0.0);
    d.push_back(1.0);
    TPRO_CHECK(d.size() == 256, "dynamic map has ", d.size(), " values");
    std::sort(d.begin(), d.end());
    for (int i = 0; i < 256; ++i) v[i] = float(d[size_t(i)]);
  }
};

}  // namespace

const float* nf4_dynamic_map() {
  static const DynamicMap map;
  return map.v;
}

uint8_t nf4_encode(float x) {
  int idx = 0;
  for (float t : kNf4Thresholds) idx += x > t;
  return uint8_t(idx);
}

uint8_t dynamic_map_encode(const float* code, float x) {
  // First entry greater than x; the answer is it or its predecessor.
  const float* up = std::upper_bound(code, code + 256, x);
  if (up == code) return 0;
  if (up == code + 256) return 255;
  const float lo = up[-1], hi = up[0];
  const int i = int(up - code);
  return uint8_t(x > (lo + hi) * 0.5f ? i : i - 1);
}

Nf4Aux Nf4Storage::aux() const {
  Nf4Aux a;
  a.qabsmax = qabsmax.data();
  a.absmax_scale = absmax_scale.data();
  a.code = code.empty() ? nf4_dynamic_map() : code.data();
  a.offset = offset;
  return a;
}

void nf4_quantize_blocks(const float* x, int64_t n, uint8_t* packed, float* absmax) {
  TPRO_CHECK(n % kNf4Block == 0, "NF4 needs a multiple of ", kNf4Block, " elements, got ", n);
  for (int64_t b = 0; b < n / kNf4Block; ++b) {
    const float* xb = x + b * kNf4Block;
    uint8_t* pb = packed + b * kNf4Block / 2;
    float amax = 0;
    for (int j = 0; j < kNf4Block; ++j) amax = std::max(amax, std::fabs(xb[j]));
    absmax[b] = amax;
    if (amax == 0) {
      std::fill(pb, pb + kNf4Block / 2, uint8_t(0x77));  // code 7 is 0.0
      continue;
    }
    const float inv = 1.0f / amax;  // bitsandbytes multiplies by the reciprocal
    for (int j = 0; j < kNf4Block / 2; ++j) {
      pb[j] = uint8_t((nf4_encode(xb[2 * j] * inv) << 4) | nf4_encode(xb[2 * j + 1] * inv));
    }
  }
}

void nf4_double_quantize(const float* absmax, int64_t n_blocks, Nf4Storage* out) {
  double sum = 0;
  for (int64_t b = 0; b < n_blocks; ++b) sum += absmax[b];
  out->offset = n_blocks > 0 ? float(sum / double(n_blocks)) : 0.0f;
  const int64_t n_groups = (n_blocks + kNf4AbsmaxGroup - 1) / kNf4AbsmaxGroup;
  out->qabsmax.assign(size_t(n_blocks), 0);
  out->absmax_scale.assign(size_t(n_groups), 0.0f);
  const float* code = nf4_dynamic_map();
  for (int64_t g = 0; g < n_groups; ++g) {
    const int64_t b0 = g * kNf4AbsmaxGroup, b1 = std::min(n_blocks, b0 + kNf4AbsmaxGroup);
    float amax = 0;
    for (int64_t b = b0; b < b1; ++b) amax = std::max(amax, std::fabs(absmax[b] - out->offset));
    out->absmax_scale[size_t(g)] = amax;
    const float inv = amax > 0 ? 1.0f / amax : 0.0f;  // all equal: every code is the 0 entry
    for (int64_t b = b0; b < b1; ++b) {
      out->qabsmax[size_t(b)] = dynamic_map_encode(code, (absmax[b] - out->offset) * inv);
    }
  }
}

float nf4_block_absmax(const Nf4Aux& aux, int64_t block) {
  return aux.code[aux.qabsmax[block]] * aux.absmax_scale[block / kNf4AbsmaxGroup] + aux.offset;
}

void nf4_dequantize_ref(const uint8_t* packed, const Nf4Aux& aux, int64_t block0, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kNf4Block; ++b, y += kNf4Block) {
    const float a = nf4_block_absmax(aux, block0 + b);
    const uint8_t* pb = packed + b * kNf4Block / 2;
    for (int j = 0; j < kNf4Block / 2; ++j) {
      y[2 * j] = kNf4Codes[pb[j] >> 4] * a;
      y[2 * j + 1] = kNf4Codes[pb[j] & 0xF] * a;
    }
  }
}

}  // namespace tpro
