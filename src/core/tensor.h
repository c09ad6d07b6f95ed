// A tensor view: pointer, dtype and shape, row-major and contiguous. It never owns memory:
// owners are mmapped files (io/), Arenas (core/arena.h) or std::vectors held by a struct.
// Dimension legend used across tpro: B batch, T tokens, D model dim, F FFN dim, H/Hkv heads,
// Dh head dim, V vocab, R LoRA rank.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace tpro {

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  TensorView() = default;
  TensorView(void* d, DType t, std::vector<int64_t> s) : data(d), dtype(t), shape(std::move(s)) {}

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  int ndim() const { return int(shape.size()); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  bool empty() const { return data == nullptr; }
  float* f32() const {
    TPRO_CHECK(dtype == DType::F32, "tensor is ", dtype_name(dtype), ", not F32");
    return static_cast<float*>(data);
  }
};

std::string shape_str(const std::vector<int64_t>& shape);  // "(4, 576)"

}  // namespace tpro
