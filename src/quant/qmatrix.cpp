// Storage-type table and row dequantization (plain types; block quants arrive with quant/).
#include "quant/qmatrix.h"

#include "core/dtype.h"
#include "core/error.h"

namespace tpro {

std::string_view wtype_name(WType t) {
  switch (t) {
    case WType::F32: return "F32";
    case WType::F16: return "F16";
    case WType::BF16: return "BF16";
    case WType::Q8_0: return "Q8_0";
    case WType::Q4_0: return "Q4_0";
    case WType::Q4_K: return "Q4_K";
    case WType::Q6_K: return "Q6_K";
    case WType::NF4: return "NF4";
  }
  return "?";
}

int64_t wtype_block(WType t) { return (t == WType::F32 || t == WType::F16 || t == WType::BF16) ? 1 : 32; }

size_t wtype_row_bytes(WType t, int64_t cols) {
  switch (t) {
    case WType::F32: return size_t(cols) * 4;
    case WType::F16:
    case WType::BF16: return size_t(cols) * 2;
    default: fail("wtype_row_bytes: ", wtype_name(t), " not supported yet");
  }
}

void dequantize_rows(const WeightMatrix& w, int64_t row0, int64_t n_rows, float* dst) {
  fail("dequantize_rows: ", wtype_name(w.type), " not supported yet");
}

}  // namespace tpro
