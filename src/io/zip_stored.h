// The entries of a zip archive whose members are stored uncompressed (method 0), as PyTorch's
// torch.save writes them: the central directory (zip64 included) is parsed and every offset,
// size and count checked against the buffer before use. Compressed, encrypted or multi-disk
// entries are reported, not decoded: no inflate here. Spec: PKWARE APPNOTE.TXT 4.3.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tpro {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored; anything else is refused by zip_entry_data
  uint32_t crc = 0;     // CRC-32 of the uncompressed bytes, from the central directory
  size_t offset = 0;    // where the entry's bytes start in the archive (after its local header)
  size_t size = 0;      // compressed size == stored size for method 0
};

// The central directory of the archive data[0, size). Throws Error "<origin>: ..." for anything
// that does not fit in the buffer or is not a single-disk zip; duplicate names are refused.
std::vector<ZipEntry> read_zip_directory(const uint8_t* data, size_t size, const std::string& origin);

// The entry's bytes, checked: stored (method 0) and matching its CRC-32. Throws otherwise.
std::string_view zip_entry_data(const uint8_t* data, const ZipEntry& e, const std::string& origin);

}  // namespace tpro
