// GGUF v3 writer: metadata of every type (insertion order kept; set() replaces a key in place)
// and tensors, each starting at a multiple of general.alignment (default 32) and zero-padded
// to it, as ggml's gguf writer lays them out, so llama.cpp loads the file. Written atomically
// (temp file + rename). Inputs are validated when added and throw tpro::Error.
// Reference: ggml docs/gguf.md; ggml/src/gguf.cpp (gguf_write_to_buf) for the padding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/file.h"
#include "io/gguf.h"

namespace tpro {

class GgufWriter {
 public:
  // general.alignment, if set, must be a u32 power of two; keys must be 1..65535 bytes.
  void set(std::string key, GgufValue value);
  const GgufValue* find(std::string_view key) const;
  const std::vector<GgufKV>& metadata() const { return kv_; }

  // ne in ggml order (ne[0] = row length). nbytes must equal the size the type and shape imply;
  // names must be unique and under 64 bytes (llama.cpp's GGML_MAX_NAME).
  // Borrowed: data must stay valid until write()/to_bytes().
  void add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, const void* data, size_t nbytes);
  // Owned: the writer keeps the bytes.
  void add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes);

  uint32_t alignment() const;
  size_t file_size() const;
  void write(const fs::path& path) const;  // atomic
  std::string to_bytes() const;            // the whole file in memory (small files, tests)

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    const uint8_t* borrowed = nullptr;
    std::vector<uint8_t> owned;
    size_t nbytes = 0;
    const uint8_t* bytes() const { return borrowed ? borrowed : owned.data(); }
  };
  void check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne, size_t nbytes) const;
  std::string header() const;  // everything before the data section, padding included

  std::vector<GgufKV> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace tpro
