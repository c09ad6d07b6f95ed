// CRC-32 and CRC-32C; see crc32.h. Tables built once at compile time.
#include "core/crc32.h"

#include <array>

namespace tpro {

namespace {

constexpr std::array<uint32_t, 256> make_table(uint32_t poly) {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? poly ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

constexpr auto kZip = make_table(0xEDB88320u);
constexpr auto kCastagnoli = make_table(0x82F63B78u);

uint32_t update(const std::array<uint32_t, 256>& table, uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
  return ~c;
}

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) { return update(kZip, crc, data, n); }

uint32_t crc32c(const void* data, size_t n) { return update(kCastagnoli, 0, data, n); }

}  // namespace tpro
