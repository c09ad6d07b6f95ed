// CRC-32 checksums: the zip one (IEEE 802.3, reflected polynomial 0xEDB88320; what zip entries
// and PyTorch's torch.save archives record) and CRC-32C (Castagnoli, 0x82F63B78; what
// TensorBoard's tfevents records use, "masked"). Table-driven, one byte at a time: the inputs
// are adapters and log records, not model weights.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tpro {

// crc32(data) == crc32_update(0, data); crc32_update(crc32(a), b) == crc32(a + b).
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32(const void* data, size_t n) { return crc32_update(0, data, n); }

uint32_t crc32c(const void* data, size_t n);
// TensorFlow's masking of a CRC-32C stored next to the data it covers (tensorflow/core/lib/hash/crc32c.h).
inline uint32_t crc32c_masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace tpro
