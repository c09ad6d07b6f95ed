// Frozen weight matrices in any storage type tpro trains on: plain (F32/F16/BF16), GGUF block
// quants (Q8_0, Q4_0, Q4_K, Q6_K) and QLoRA NF4 with double quantization. Kernels never see
// the formats: they call dequantize_rows() on a panel of rows into f32 scratch, then GEMM.
// Layout is row-major (rows = out features, cols = in features), every row self-contained.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace tpro {

enum class WType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, NF4 };

std::string_view wtype_name(WType t);   // "F32", "Q4_K", "NF4", ...
int64_t wtype_block(WType t);           // elements per block (1 for plain types)
size_t wtype_row_bytes(WType t, int64_t cols);  // bytes of one row in `data` (cols % block == 0)

// A non-owning view of a (rows, cols) weight.
struct WeightMatrix {
  WType type = WType::F32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;  // rows * wtype_row_bytes(type, cols) bytes
  const void* aux = nullptr;   // NF4 only: the double-quantized block scales (see nf4 header)
};

// dst (n_rows, cols) f32 <- rows [row0, row0 + n_rows) of w.
void dequantize_rows(const WeightMatrix& w, int64_t row0, int64_t n_rows, float* dst);

}  // namespace tpro
