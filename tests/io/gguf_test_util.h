// Helpers for the GGUF tests: a raw little-endian byte builder for hand-made (corrupt) files,
// a per-test temp folder, and "open this file and return the error message".
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"

namespace tpro::test {

struct Bytes {
  std::string b;
  template <typename T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& i64(int64_t v) { return put(v); }
  Bytes& raw(std::string_view s) {
    b.append(s);
    return *this;
  }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s); }
  // "GGUF", version, n_tensors, n_kv.
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  // A tensor info: name, n_dims, ne..., type, offset.
  Bytes& tensor(std::string_view name, std::initializer_list<int64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (int64_t d : ne) i64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad(size_t align) {
    b.resize((b.size() + align - 1) / align * align, '\0');
    return *this;
  }
  size_t size() const { return b.size(); }
};

inline fs::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::path(::testing::TempDir()) / (std::string("tpro_") + info->test_suite_name() + "_" + info->name());
  fs::create_directories(d);
  return d;
}

inline fs::path write_temp(const std::string& name, const std::string& bytes) {
  fs::path p = temp_dir() / name;
  write_file_atomic(p, bytes);
  return p;
}

// Opens the file; returns the Error message, or "" when it opened.
inline std::string open_error(const fs::path& p) {
  try {
    GgufFile f(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace tpro::test
