// An owning (rows, cols) weight in any WType: the row bytes plus, for NF4, the double-quantized
// absmax arrays. view() hands kernels the non-owning WeightMatrix of qmatrix.h.
// quantize_matrix() converts f32 (or any WeightMatrix, panel by panel) with ggml's reference
// quantizers or NF4; it validates shapes and values and throws tpro::Error on bad input.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "quant/nf4.h"
#include "quant/qmatrix.h"

namespace tpro {

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;
  // Zeroed storage; throws Error when cols is not a multiple of the type's block.
  QuantizedMatrix(WType type, int64_t rows, int64_t cols);

  WType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  const std::vector<uint8_t>& data() const { return data_; }  // rows * wtype_row_bytes(type, cols)
  uint8_t* mutable_data() { return data_.data(); }
  // NF4 only: the absmax arrays (null before set_nf4). set_nf4 checks their sizes.
  const Nf4Storage* nf4() const { return nf4_ ? &nf4_->storage : nullptr; }
  void set_nf4(Nf4Storage storage);

  WeightMatrix view() const;
  size_t nbytes() const;  // == wtype_matrix_bytes(type, rows, cols) once filled

 private:
  WType type_ = WType::F32;
  int64_t rows_ = 0, cols_ = 0;
  std::vector<uint8_t> data_;
  struct Nf4Holder {  // on the heap so view()'s aux pointer survives moves of the matrix
    Nf4Storage storage;
    Nf4Aux aux;
  };
  std::unique_ptr<Nf4Holder> nf4_;
};

// src (rows, cols) f32 -> type. Throws Error if cols is not a multiple of the type's block or
// src holds NaN/Inf (named by row and column). Rows are quantized in parallel (OpenMP).
QuantizedMatrix quantize_matrix(const float* src, int64_t rows, int64_t cols, WType type);
// Requantizes any weight (e.g. BF16 -> NF4) by dequantizing panels of rows into f32 scratch.
QuantizedMatrix quantize_matrix(const WeightMatrix& src, WType type);

}  // namespace tpro
