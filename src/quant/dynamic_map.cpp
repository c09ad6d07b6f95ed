// The dynamic quantization maps and their nearest-code search; see dynamic_map.h.
#include "quant/dynamic_map.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tpro {

namespace {

std::array<float, 256> make_map(bool is_signed) {
  // Exponent i (0..6) covers 10^(i-6)·[0.1, 1] with the midpoints of a linspace of
  // 2^i + 1 (signed, mirrored) or 2^(i+1) + 1 (unsigned) boundaries; then 0 and 1.
  std::vector<double> data;
  for (int i = 0; i < 7; ++i) {
    const int items = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
    const double scale = std::pow(10.0, double(i - 6));
    for (int k = 0; k + 1 < items; ++k) {
      const double mean = 0.1 + 0.9 * (double(k) + 0.5) / double(items - 1);
      data.push_back(scale * mean);
      if (is_signed) data.push_back(-scale * mean);
    }
  }
  data.push_back(0.0);
  data.push_back(1.0);
  std::sort(data.begin(), data.end());
  std::array<float, 256> out{};
  for (size_t i = 0; i < out.size() && i < data.size(); ++i) out[i] = float(data[i]);
  return out;
}

}  // namespace

const std::array<float, 256>& dynamic_map(bool is_signed) {
  static const std::array<float, 256> s = make_map(true), u = make_map(false);
  return is_signed ? s : u;
}

uint8_t quantize_dynamic(const std::array<float, 256>& code, float x, bool is_signed) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = is_signed ? -1.0f : 0.0f, upper = 1.0f, val = code[127];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lower_pivot = pivot, lower = val, pivot += i;
    } else {
      upper_pivot = pivot, upper = val, pivot -= i;
    }
    val = code[size_t(pivot)];
  }
  if (x > val) return uint8_t(x > (upper + val) * 0.5f ? upper_pivot : pivot);
  return uint8_t(x < (lower + val) * 0.5f ? lower_pivot : pivot);
}

}  // namespace tpro
