// Frozen weight matrices in any storage type tpro trains on: plain (F32/F16/BF16), GGUF block
// quants (Q8_0, Q4_0, Q4_K, Q6_K) and QLoRA NF4 with double quantization. Kernels never see
// the formats: they call dequantize_rows() on a panel of rows into f32 scratch, then GEMM.
// Layout is row-major (rows = out features, cols = in features), every row self-contained.
// Owning storage and quantizers are in quantized_matrix.h; block layouts in ggml_blocks.h, nf4.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace tpro {

enum class WType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, NF4 };
constexpr int kWTypeCount = 8;

std::string_view wtype_name(WType t);   // "F32", "Q4_K", "NF4", ...
int64_t wtype_block(WType t);           // elements per block (1 for plain types)
size_t wtype_row_bytes(WType t, int64_t cols);  // bytes of one row in `data` (cols % block == 0)
// Parses a name case-insensitively ("nf4", "Q4_K", "bf16"); false when unknown.
bool wtype_from_name(std::string_view name, WType* out);

// ggml type ids (GGUF tensor types) of the formats above; NF4 has none.
bool wtype_from_ggml(uint32_t ggml_type, WType* out);
int wtype_to_ggml(WType t);  // -1 for NF4

struct PreparedWeight;  // kernels/backend.h: a backend's own form of the weight (opaque here)

// A non-owning view of a (rows, cols) weight.
struct WeightMatrix {
  WType type = WType::F32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;  // rows * wtype_row_bytes(type, cols) bytes
  const void* aux = nullptr;   // NF4 only: the double-quantized block scales (see nf4 header)
  // Multiply in bf16: inputs rounded to bf16, products summed in f32 (mixed precision, as
  // torch.autocast(bfloat16) does). False: the weight is widened to f32 and multiplied in f32.
  bool bf16_compute = false;
  // Optional form the backend prepared for its products (Backend::prepare_weight; owned by the
  // model, see prepare_weights in model/base_weights.h). Null: the kernels read `data`.
  const PreparedWeight* prepared = nullptr;
};

// dst (n_rows, cols) f32 <- rows [row0, row0 + n_rows) of w. Uses AVX2 when compiled in;
// the result is bit-identical to dequantize_rows_ref.
void dequantize_rows(const WeightMatrix& w, int64_t row0, int64_t n_rows, float* dst);
// The scalar reference (the oracle the fast path is tested against).
void dequantize_rows_ref(const WeightMatrix& w, int64_t row0, int64_t n_rows, float* dst);

// Memory report: storage cost of each type, scales included (NF4: 4 bits + 8-bit absmax per
// 64 + f32 per 256 absmax = 4.127 bits, as in the QLoRA paper).
double wtype_bits_per_weight(WType t);
double wtype_bytes_per_weight(WType t);
// Exact bytes of a (rows, cols) matrix of type t: row data plus, for NF4, the aux arrays.
size_t wtype_matrix_bytes(WType t, int64_t rows, int64_t cols);

}  // namespace tpro
