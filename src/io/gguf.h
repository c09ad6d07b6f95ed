// GGUF v3 (and v2) reader over a read-only memory map: header, metadata of every type (nested
// arrays included), tensor infos, general.alignment and the data section. Every count, length,
// shape and offset is checked against the file size before anything is allocated or read; a
// corrupt file throws tpro::Error naming the path, the byte offset and what was wrong.
// It does not decode tensor data (quant/ does) or interpret architectures (model/ does).
// Reference: ggml docs/gguf.md and ggml/src/gguf.cpp (its checks, stricter on nesting/overlap).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf_value.h"

namespace tpro {

constexpr uint32_t kGgufDefaultAlignment = 32;

struct GgufKV {
  std::string key;
  GgufValue value;
};

// A tensor view into the mapping. ne is in ggml order: ne[0] is the fastest dimension (the
// columns of a row-major matrix, `in` features of a weight), ne[1] the rows, and so on.
struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;
  uint64_t offset = 0;            // from the start of the data section
  const uint8_t* data = nullptr;  // nbytes bytes inside the mapping
  size_t nbytes = 0;

  int64_t numel() const;
  int64_t cols() const { return ne.empty() ? 1 : ne[0]; }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }  // product of ne[1..]
};

class GgufReader;  // bounds-checked cursor over the mapping (gguf.cpp)

class GgufFile {
 public:
  explicit GgufFile(const fs::path& path);  // maps and validates; throws Error

  const fs::path& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // absolute start of the data section

  // Metadata in file order, and typed access by key. Getters throw Error naming the key when
  // it is missing or stored as another type ("is u64, expected u32").
  const std::vector<GgufKV>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  template <typename T>
  const T& get(std::string_view key) const;
  template <typename T>
  T get_or(std::string_view key, T fallback) const;
  template <typename T>
  const std::vector<T>& get_array(std::string_view key) const;  // array whose elements are T

  uint8_t get_u8(std::string_view k) const { return get<uint8_t>(k); }
  int8_t get_i8(std::string_view k) const { return get<int8_t>(k); }
  uint16_t get_u16(std::string_view k) const { return get<uint16_t>(k); }
  int16_t get_i16(std::string_view k) const { return get<int16_t>(k); }
  uint32_t get_u32(std::string_view k) const { return get<uint32_t>(k); }
  int32_t get_i32(std::string_view k) const { return get<int32_t>(k); }
  uint64_t get_u64(std::string_view k) const { return get<uint64_t>(k); }
  int64_t get_i64(std::string_view k) const { return get<int64_t>(k); }
  float get_f32(std::string_view k) const { return get<float>(k); }
  double get_f64(std::string_view k) const { return get<double>(k); }
  bool get_bool(std::string_view k) const { return get<bool>(k); }
  const std::string& get_string(std::string_view k) const { return get<std::string>(k); }
  // Any integer type (converters disagree on u32 vs u64 for counts); throws if out of range.
  int64_t get_int(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;
  const GgufTensor& tensor(std::string_view name) const;  // throws "no tensor named ..."
  // As tensor(), but throws when tpro cannot compute with its type (names tensor and type).
  const GgufTensor& supported_tensor(std::string_view name) const;

 private:
  const GgufValue& value(std::string_view key) const;
  [[noreturn]] void type_error(std::string_view key, std::string_view expected, const GgufValue& got) const;
  void parse();
  void parse_metadata(GgufReader& r, uint64_t n_kv);
  void parse_tensor_infos(GgufReader& r, uint64_t n_tensors);
  void check_tensor_data(const std::vector<size_t>& offset_at);

  MappedFile file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<GgufKV> kv_;
  std::vector<size_t> kv_at_;  // byte offset of each metadata entry, for messages
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

template <typename T>
const T& GgufFile::get(std::string_view key) const {
  const GgufValue& v = value(key);
  if (const T* p = std::get_if<T>(&v.data)) return *p;
  type_error(key, gguf_type_name(gguf_type_of<T>()), v);
}

template <typename T>
T GgufFile::get_or(std::string_view key, T fallback) const {
  return has(key) ? get<T>(key) : fallback;
}

template <typename T>
const std::vector<T>& GgufFile::get_array(std::string_view key) const {
  const GgufValue& v = value(key);
  if (const auto* a = std::get_if<GgufArray>(&v.data)) {
    if (const auto* p = std::get_if<std::vector<T>>(&a->data)) return *p;
  }
  if constexpr (std::is_same_v<T, GgufArray>) {
    type_error(key, "array of array", v);
  } else {
    type_error(key, cat("array of ", gguf_type_name(gguf_type_of<T>())), v);
  }
}

// True when path is a regular file that starts with the GGUF magic (whatever its extension).
bool is_gguf_file(const fs::path& path);

// Llama Q/K row permutation of llama.cpp's convert_hf_to_gguf.py (LlamaModel.permute): within
// each head, HF's rotate-half order (rows [0, Dh/2) pair with [Dh/2, Dh)) becomes the
// interleaved order llama.cpp's RoPE expects (row 2i pairs with 2i+1):
//   gguf row h*Dh + 2i + j  <-  hf row h*Dh + j*Dh/2 + i    (i < Dh/2, j in {0, 1})
// Use n_head for attn_q and n_head_kv for attn_k. Rows are moved whole (row_bytes each), so
// it works for f32, bf16 and quantized rows alike; for a LoRA pair permute lora_B's rows
// (out features) and leave lora_A alone. src and dst must not overlap. Throws Error unless
// rows is a positive multiple of 2 * n_head.
void permute_qk_rows(const void* src, void* dst, int64_t rows, size_t row_bytes, int64_t n_head);
// The inverse: GGUF (interleaved) order back to HF order.
void unpermute_qk_rows(const void* src, void* dst, int64_t rows, size_t row_bytes, int64_t n_head);
// The HF row that lands at GGUF row r.
int64_t permute_qk_source_row(int64_t r, int64_t rows, int64_t n_head);

}  // namespace tpro
