// AVX2 dequantization of every storage type (the training hot path: each GEMM panel of a
// frozen weight passes through here). Results are bit-identical to the scalar references:
// same products in the same order, no FMA (mul then sub). Without AVX2 at compile time each
// function forwards to its reference. Tested against the references on ragged shapes.
#include <cstring>

#include "core/dtype.h"
#include "quant/ggml_blocks.h"
#include "quant/nf4.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace tpro {

#if defined(__AVX2__)

namespace {

// 8 unsigned bytes -> 8 floats.
inline __m256 u8x8_to_ps(__m128i bytes) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)); }

// Stores y[0..32) = d * q - m for the 32 unsigned 4-bit values in nib (one per byte).
inline void store_scaled_32(__m256i nib, __m256 d, __m256 m, float* y) {
  const __m128i lo = _mm256_castsi256_si128(nib), hi = _mm256_extracti128_si256(nib, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(d, u8x8_to_ps(parts[k])), m));
  }
}

}  // namespace

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_0; ++i, y += kQK8_0) {
    const __m256 d = _mm256_set1_ps(f16_to_f32(x[i].d));
    for (int k = 0; k < 4; ++k) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[i].qs + 8 * k));
      const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
      _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(f, d));
    }
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m256i eight = _mm256_set1_epi32(8);
  for (int64_t i = 0; i < n / kQK4_0; ++i, y += kQK4_0) {
    const __m256 d = _mm256_set1_ps(f16_to_f32(x[i].d));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs));
    const __m128i lo = _mm_and_si128(b, mask), hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) {
      const __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(parts[k]), eight);
      _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
    }
  }
}

void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t n) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = f16_to_f32(x[i].d), min = f16_to_f32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int j = 0; j < 4; ++j, q += 32, y += 64) {
      uint8_t sc, m;
      get_scale_min_k4(2 * j, x[i].scales, &sc, &m);
      const __m256 d1 = _mm256_set1_ps(d * float(sc)), m1 = _mm256_set1_ps(min * float(m));
      get_scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
      const __m256 d2 = _mm256_set1_ps(d * float(sc)), m2 = _mm256_set1_ps(min * float(m));
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
      store_scaled_32(_mm256_and_si256(b, mask), d1, m1, y);
      store_scaled_32(_mm256_and_si256(_mm256_srli_epi16(b, 4), mask), d2, m2, y + 32);
    }
  }
}

void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t n) {
  const __m256i m4 = _mm256_set1_epi32(0xF), m2 = _mm256_set1_epi32(3), k32 = _mm256_set1_epi32(32);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; l += 8) {
        const int is = l / 16;
        const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l)));
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l + 32)));
        const __m256i h = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qh + l)));
        const __m256i hb[4] = {_mm256_and_si256(h, m2), _mm256_and_si256(_mm256_srli_epi32(h, 2), m2),
                               _mm256_and_si256(_mm256_srli_epi32(h, 4), m2), _mm256_and_si256(_mm256_srli_epi32(h, 6), m2)};
        const __m256i lo[4] = {_mm256_and_si256(a, m4), _mm256_and_si256(b, m4), _mm256_srli_epi32(a, 4),
                               _mm256_srli_epi32(b, 4)};
        for (int k = 0; k < 4; ++k) {
          const __m256i q = _mm256_sub_epi32(_mm256_or_si256(lo[k], _mm256_slli_epi32(hb[k], 4)), k32);
          const __m256 s = _mm256_set1_ps(d * float(sc[is + 2 * k]));
          _mm256_storeu_ps(y + l + 32 * k, _mm256_mul_ps(s, _mm256_cvtepi32_ps(q)));
        }
      }
    }
  }
}

void f16_row_to_f32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  }
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void bf16_row_to_f32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

void nf4_dequantize(const uint8_t* packed, const Nf4Aux& aux, int64_t block0, int64_t n, float* y) {
  const __m256i seven = _mm256_set1_epi32(7), m4 = _mm256_set1_epi32(0xF);
  alignas(32) float tab[16];
  for (int64_t b = 0; b < n / kNf4Block; ++b, y += kNf4Block) {
    const float a = nf4_block_absmax(aux, block0 + b);
    for (int c = 0; c < 16; ++c) tab[c] = kNf4Codes[c] * a;  // the same products as the reference
    const __m256 t_lo = _mm256_load_ps(tab), t_hi = _mm256_load_ps(tab + 8);
    auto lookup = [&](__m256i idx) {  // tab[idx] for idx in 0..15
      const __m256 lo = _mm256_permutevar8x32_ps(t_lo, idx), hi = _mm256_permutevar8x32_ps(t_hi, idx);
      return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven)));
    };
    const uint8_t* pb = packed + b * kNf4Block / 2;
    for (int j = 0; j < kNf4Block / 2; j += 8) {
      const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pb + j)));
      const __m256 even = lookup(_mm256_srli_epi32(v, 4)), odd = lookup(_mm256_and_si256(v, m4));
      // Interleave: [e0 o0 e1 o1 e2 o2 e3 o3] [e4 o4 ... e7 o7].
      const __m256 u0 = _mm256_unpacklo_ps(even, odd), u1 = _mm256_unpackhi_ps(even, odd);
      _mm256_storeu_ps(y + 2 * j, _mm256_permute2f128_ps(u0, u1, 0x20));
      _mm256_storeu_ps(y + 2 * j + 8, _mm256_permute2f128_ps(u0, u1, 0x31));
    }
  }
}

#else  // no AVX2: the references are the fast path

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) { dequantize_row_q8_0_ref(x, y, n); }
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) { dequantize_row_q4_0_ref(x, y, n); }
void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t n) { dequantize_row_q4_K_ref(x, y, n); }
void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t n) { dequantize_row_q6_K_ref(x, y, n); }
void f16_row_to_f32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}
void bf16_row_to_f32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}
void nf4_dequantize(const uint8_t* packed, const Nf4Aux& aux, int64_t block0, int64_t n, float* y) {
  nf4_dequantize_ref(packed, aux, block0, n, y);
}

#endif

}  // namespace tpro
