// Reads tests/fixtures/quant/quant_fixtures.bin, written by make_quant_fixtures.py: records of
// (u32 name length, name, u64 byte count, bytes), little-endian. A missing file or record fails.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/file.h"

namespace tpro::test {

class QuantFixtures {
 public:
  QuantFixtures() {
    const std::string raw = read_file(std::string(TPRO_FIXTURES) + "/quant/quant_fixtures.bin");
    size_t pos = 0;
    auto take = [&](size_t n) {
      if (n > raw.size() - pos) throw std::runtime_error("quant_fixtures.bin is truncated");
      std::string s = raw.substr(pos, n);
      pos += n;
      return s;
    };
    while (pos < raw.size()) {
      uint32_t name_len;
      std::memcpy(&name_len, take(4).data(), 4);
      std::string name = take(name_len);
      uint64_t n;
      std::memcpy(&n, take(8).data(), 8);
      records_[name] = take(size_t(n));
    }
  }
  const std::string& bytes(const std::string& name) const {
    auto it = records_.find(name);
    if (it == records_.end()) throw std::runtime_error("no fixture record " + name);
    return it->second;
  }
  std::vector<float> floats(const std::string& name) const {
    const std::string& b = bytes(name);
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), v.size() * 4);
    return v;
  }

 private:
  std::map<std::string, std::string> records_;
};

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Counts elements whose bit patterns differ (so -0 vs 0 and NaN payloads count too).
inline size_t bit_mismatches(const float* a, const float* b, size_t n, size_t* first = nullptr) {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (float_bits(a[i]) != float_bits(b[i])) {
      if (bad == 0 && first) *first = i;
      ++bad;
    }
  }
  return bad;
}

}  // namespace tpro::test
