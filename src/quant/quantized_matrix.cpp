// QuantizedMatrix storage and quantize_matrix: shape and value checks at the boundary, then
// per-row quantization (rows in parallel) with ggml's reference quantizers or NF4, whose
// double quantization runs once over the whole tensor's absmax array.
#include "quant/quantized_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/ggml_blocks.h"

namespace tpro {

namespace {

std::string types_fitting(int64_t cols) {
  std::string out;
  for (int i = 0; i < kWTypeCount; ++i) {
    const WType t = WType(i);
    if (wtype_block(t) > 1 && cols % wtype_block(t) == 0) out += cat(out.empty() ? "" : ", ", wtype_name(t));
  }
  return out.empty() ? "F32, F16 or BF16" : out + ", or a plain float type";
}

void check_finite(const float* x, int64_t rows, int64_t cols, int64_t row_base, WType type) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(xr[c])) {
        fail("cannot quantize to ", wtype_name(type), ": weight at row ", row_base + r, ", column ", c, " is ", xr[c],
             " (hint: the source weights are corrupt)");
      }
    }
  }
}

void quantize_row(WType type, const float* x, uint8_t* dst, int64_t n) {
  switch (type) {
    case WType::F32: std::memcpy(dst, x, size_t(n) * sizeof(float)); break;
    case WType::F16: from_f32(dst, DType::F16, x, size_t(n)); break;
    case WType::BF16: from_f32(dst, DType::BF16, x, size_t(n)); break;
    case WType::Q8_0: quantize_row_q8_0_ref(x, reinterpret_cast<BlockQ8_0*>(dst), n); break;
    case WType::Q4_0: quantize_row_q4_0_ref(x, reinterpret_cast<BlockQ4_0*>(dst), n); break;
    case WType::Q4_K: quantize_row_q4_K_ref(x, reinterpret_cast<BlockQ4_K*>(dst), n); break;
    case WType::Q6_K: quantize_row_q6_K_ref(x, reinterpret_cast<BlockQ6_K*>(dst), n); break;
    case WType::NF4: TPRO_CHECK(false, "NF4 rows are quantized with nf4_quantize_blocks"); break;
  }
}

// Quantizes rows [r0, r0 + n) from x (n, cols); for NF4 also fills absmax of those rows.
void quantize_panel(const float* x, int64_t r0, int64_t n, QuantizedMatrix& q, float* absmax) {
  const int64_t cols = q.cols();
  const size_t rb = wtype_row_bytes(q.type(), cols);
  uint8_t* dst = q.mutable_data() + size_t(r0) * rb;
  const WType type = q.type();
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t r = 0; r < n; ++r) {
    if (type == WType::NF4) {
      nf4_quantize_blocks(x + r * cols, cols, dst + size_t(r) * rb, absmax + (r0 + r) * (cols / kNf4Block));
    } else {
      quantize_row(type, x + r * cols, dst + size_t(r) * rb, cols);
    }
  }
}

void finish_nf4(QuantizedMatrix& q, const std::vector<float>& absmax) {
  Nf4Storage s;
  nf4_double_quantize(absmax.data(), int64_t(absmax.size()), &s);
  q.set_nf4(std::move(s));
}

}  // namespace

QuantizedMatrix::QuantizedMatrix(WType type, int64_t rows, int64_t cols) : type_(type), rows_(rows), cols_(cols) {
  if (rows < 0 || cols < 0) fail("cannot make a ", wtype_name(type), " matrix of shape (", rows, ", ", cols, ")");
  if (cols % wtype_block(type) != 0) {
    fail("cannot store a (", rows, ", ", cols, ") matrix as ", wtype_name(type), ": its ", cols,
         " columns are not a multiple of the ", wtype_name(type), " block of ", wtype_block(type), " (hint: use ",
         types_fitting(cols), ")");
  }
  const size_t rb = wtype_row_bytes(type, cols);
  if (rb != 0 && size_t(rows) > SIZE_MAX / rb) fail("a (", rows, ", ", cols, ") ", wtype_name(type), " matrix is too large");
  data_.assign(size_t(rows) * rb, 0);
}

void QuantizedMatrix::set_nf4(Nf4Storage storage) {
  if (type_ != WType::NF4) fail("set_nf4 on a ", wtype_name(type_), " matrix");
  const int64_t n_blocks = rows_ * cols_ / kNf4Block;
  const int64_t n_groups = (n_blocks + kNf4AbsmaxGroup - 1) / kNf4AbsmaxGroup;
  if (int64_t(storage.qabsmax.size()) != n_blocks || int64_t(storage.absmax_scale.size()) != n_groups) {
    fail("NF4 matrix (", rows_, ", ", cols_, ") needs ", n_blocks, " absmax codes and ", n_groups,
         " absmax scales, got ", storage.qabsmax.size(), " and ", storage.absmax_scale.size());
  }
  if (!storage.code.empty() && storage.code.size() != 256) {
    fail("NF4 absmax code map must have 256 values, got ", storage.code.size());
  }
  nf4_ = std::make_unique<Nf4Holder>();
  nf4_->storage = std::move(storage);
  nf4_->aux = nf4_->storage.aux();
}

WeightMatrix QuantizedMatrix::view() const {
  WeightMatrix w;
  w.type = type_;
  w.rows = rows_;
  w.cols = cols_;
  w.data = data_.data();
  w.aux = nf4_ ? &nf4_->aux : nullptr;
  return w;
}

size_t QuantizedMatrix::nbytes() const {
  size_t n = data_.size();
  if (nf4_) {
    const Nf4Storage& s = nf4_->storage;
    n += s.qabsmax.size() + sizeof(float) * s.absmax_scale.size() + sizeof(float);
  }
  return n;
}

QuantizedMatrix quantize_matrix(const float* src, int64_t rows, int64_t cols, WType type) {
  QuantizedMatrix q(type, rows, cols);
  check_finite(src, rows, cols, 0, type);
  std::vector<float> absmax(type == WType::NF4 ? size_t(rows * cols / kNf4Block) : 0);
  quantize_panel(src, 0, rows, q, absmax.data());
  if (type == WType::NF4) finish_nf4(q, absmax);
  return q;
}

QuantizedMatrix quantize_matrix(const WeightMatrix& src, WType type) {
  QuantizedMatrix q(type, src.rows, src.cols);
  std::vector<float> absmax(type == WType::NF4 ? size_t(src.rows * src.cols / kNf4Block) : 0);
  const int64_t panel = std::max<int64_t>(1, std::min<int64_t>(src.rows, (int64_t(1) << 20) / std::max<int64_t>(1, src.cols)));
  std::vector<float> buf(size_t(panel * src.cols));
  for (int64_t r0 = 0; r0 < src.rows; r0 += panel) {
    const int64_t n = std::min(panel, src.rows - r0);
    dequantize_rows(src, r0, n, buf.data());
    check_finite(buf.data(), n, src.cols, r0, type);
    quantize_panel(buf.data(), r0, n, q, absmax.data());
  }
  if (type == WType::NF4) finish_nf4(q, absmax);
  return q;
}

}  // namespace tpro
