// Storage-type table (names, blocks, ggml ids, memory cost) and the dequantize_rows dispatch.
// Rows are contiguous and self-contained, so a panel of rows is one run of whole blocks and
// every format decodes it as a single flat row.
#include "quant/qmatrix.h"

#include <cctype>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/ggml_blocks.h"
#include "quant/nf4.h"

namespace tpro {

namespace {

struct WInfo {
  WType type;
  const char* name;
  int64_t block;       // elements per block
  size_t block_bytes;  // bytes per block in the row data (aux excluded)
  int ggml;            // ggml type id, -1 if none
};

constexpr WInfo kInfo[kWTypeCount] = {
    {WType::F32, "F32", 1, 4, 0},
    {WType::F16, "F16", 1, 2, 1},
    {WType::BF16, "BF16", 1, 2, 30},
    {WType::Q8_0, "Q8_0", kQK8_0, sizeof(BlockQ8_0), 8},
    {WType::Q4_0, "Q4_0", kQK4_0, sizeof(BlockQ4_0), 2},
    {WType::Q4_K, "Q4_K", kQK_K, sizeof(BlockQ4_K), 12},
    {WType::Q6_K, "Q6_K", kQK_K, sizeof(BlockQ6_K), 14},
    {WType::NF4, "NF4", kNf4Block, kNf4Block / 2, -1},
};

const WInfo& info(WType t) {
  const auto i = size_t(t);
  TPRO_CHECK(i < size_t(kWTypeCount), "bad WType ", i);
  return kInfo[i];
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

using RowFn = void (*)(const void* src, float* dst, int64_t n);

template <typename Block, void (*F)(const Block*, float*, int64_t)>
void as_blocks(const void* src, float* dst, int64_t n) {
  F(static_cast<const Block*>(src), dst, n);
}

void f32_copy(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(float)); }

void f16_ref(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void bf16_ref(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}

RowFn row_fn(WType t, bool fast) {
  switch (t) {
    case WType::F32: return f32_copy;
    case WType::F16: return fast ? as_blocks<uint16_t, f16_row_to_f32> : f16_ref;
    case WType::BF16: return fast ? as_blocks<uint16_t, bf16_row_to_f32> : bf16_ref;
    case WType::Q8_0:
      return fast ? as_blocks<BlockQ8_0, dequantize_row_q8_0> : as_blocks<BlockQ8_0, dequantize_row_q8_0_ref>;
    case WType::Q4_0:
      return fast ? as_blocks<BlockQ4_0, dequantize_row_q4_0> : as_blocks<BlockQ4_0, dequantize_row_q4_0_ref>;
    case WType::Q4_K:
      return fast ? as_blocks<BlockQ4_K, dequantize_row_q4_K> : as_blocks<BlockQ4_K, dequantize_row_q4_K_ref>;
    case WType::Q6_K:
      return fast ? as_blocks<BlockQ6_K, dequantize_row_q6_K> : as_blocks<BlockQ6_K, dequantize_row_q6_K_ref>;
    case WType::NF4: break;
  }
  return nullptr;
}

void dequantize_impl(const WeightMatrix& w, int64_t row0, int64_t n_rows, float* dst, bool fast) {
  TPRO_CHECK(row0 >= 0 && n_rows >= 0 && row0 + n_rows <= w.rows, "rows [", row0, ", ", row0 + n_rows,
             ") out of a ", w.rows, "-row ", wtype_name(w.type), " matrix");
  TPRO_CHECK(w.data != nullptr || w.rows * w.cols == 0, "weight matrix has no data");
  if (n_rows == 0 || w.cols == 0) return;
  const size_t row_bytes = wtype_row_bytes(w.type, w.cols);
  const uint8_t* src = static_cast<const uint8_t*>(w.data) + size_t(row0) * row_bytes;
  const int64_t n = n_rows * w.cols;
  if (w.type == WType::NF4) {
    TPRO_CHECK(w.aux != nullptr, "NF4 matrix without its Nf4Aux");
    const auto& aux = *static_cast<const Nf4Aux*>(w.aux);
    const int64_t block0 = row0 * (w.cols / kNf4Block);
    (fast ? nf4_dequantize : nf4_dequantize_ref)(src, aux, block0, n, dst);
    return;
  }
  row_fn(w.type, fast)(src, dst, n);
}

}  // namespace

std::string_view wtype_name(WType t) { return info(t).name; }
int64_t wtype_block(WType t) { return info(t).block; }

size_t wtype_row_bytes(WType t, int64_t cols) {
  const WInfo& i = info(t);
  TPRO_CHECK(cols >= 0 && cols % i.block == 0, wtype_name(t), " rows need a multiple of ", i.block,
             " columns, got ", cols);
  return size_t(cols / i.block) * i.block_bytes;
}

bool wtype_from_name(std::string_view name, WType* out) {
  for (const auto& i : kInfo) {
    if (iequal(name, i.name)) {
      *out = i.type;
      return true;
    }
  }
  return false;
}

bool wtype_from_ggml(uint32_t ggml_type, WType* out) {
  for (const auto& i : kInfo) {
    if (i.ggml >= 0 && uint32_t(i.ggml) == ggml_type) {
      *out = i.type;
      return true;
    }
  }
  return false;
}

int wtype_to_ggml(WType t) { return info(t).ggml; }

void dequantize_rows(const WeightMatrix& w, int64_t row0, int64_t n_rows, float* dst) {
  dequantize_impl(w, row0, n_rows, dst, true);
}

void dequantize_rows_ref(const WeightMatrix& w, int64_t row0, int64_t n_rows, float* dst) {
  dequantize_impl(w, row0, n_rows, dst, false);
}

double wtype_bits_per_weight(WType t) {
  const WInfo& i = info(t);
  double bits = 8.0 * double(i.block_bytes) / double(i.block);
  if (t == WType::NF4) bits += 8.0 / kNf4Block + 32.0 / (kNf4Block * kNf4AbsmaxGroup);
  return bits;
}

double wtype_bytes_per_weight(WType t) { return wtype_bits_per_weight(t) / 8.0; }

size_t wtype_matrix_bytes(WType t, int64_t rows, int64_t cols) {
  size_t bytes = size_t(rows) * wtype_row_bytes(t, cols);
  if (t == WType::NF4) {
    const int64_t n_blocks = rows * cols / kNf4Block;
    const int64_t n_groups = (n_blocks + kNf4AbsmaxGroup - 1) / kNf4AbsmaxGroup;
    bytes += size_t(n_blocks) + sizeof(float) * size_t(n_groups) + sizeof(float);  // codes, scales, offset
  }
  return bytes;
}

}  // namespace tpro
