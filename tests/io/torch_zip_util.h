// Hand-made torch.save archives for tests of io/torch_pickle: a stored-entries zip writer
// (64-byte aligned data, as PyTorch's writer pads it) and builders for the pickle opcodes a
// dict of tensors uses, so each malformed case differs from a valid file in one place.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/crc32.h"

namespace tpro::test {

inline std::string le_bytes(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char((v >> (8 * i)) & 0xff);
  return s;
}

struct ZipPart {
  std::string name, data;
  uint16_t method = 0;
};

// A zip of the parts, each stored, its data aligned to 64 bytes through the local extra field.
// zip64: sizes and offsets in zip64 extra fields and a zip64 end record (as large archives have).
inline std::string make_zip(const std::vector<ZipPart>& parts, bool zip64 = false) {
  std::string out, central;
  const uint64_t mask = zip64 ? 0xffffffffu : 0;
  for (const auto& p : parts) {
    const uint32_t crc = crc32(p.data.data(), p.data.size());
    const size_t local = out.size();
    const size_t pad = (64 - (local + 30 + p.name.size() + 4) % 64) % 64;
    out += le_bytes(0x04034b50, 4) + le_bytes(20, 2) + le_bytes(0, 2) + le_bytes(p.method, 2) + le_bytes(0, 4) +
           le_bytes(crc, 4) + le_bytes(p.data.size(), 4) + le_bytes(p.data.size(), 4) + le_bytes(p.name.size(), 2) +
           le_bytes(4 + pad, 2) + p.name + le_bytes(0x4246, 2) + le_bytes(pad, 2) + std::string(pad, 'Z') + p.data;
    const std::string extra =
        zip64 ? le_bytes(1, 2) + le_bytes(24, 2) + le_bytes(p.data.size(), 8) + le_bytes(p.data.size(), 8) +
                    le_bytes(local, 8)
              : std::string();
    central += le_bytes(0x02014b50, 4) + le_bytes(45, 2) + le_bytes(45, 2) + le_bytes(0, 2) + le_bytes(p.method, 2) +
               le_bytes(0, 4) + le_bytes(crc, 4) + le_bytes(p.data.size() | mask, 4) +
               le_bytes(p.data.size() | mask, 4) + le_bytes(p.name.size(), 2) + le_bytes(extra.size(), 2) +
               le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) + le_bytes(local | mask, 4) + p.name +
               extra;
  }
  const size_t cd = out.size();
  out += central;
  if (zip64) {
    const size_t end64 = out.size();
    out += le_bytes(0x06064b50, 4) + le_bytes(44, 8) + le_bytes(45, 2) + le_bytes(45, 2) + le_bytes(0, 4) +
           le_bytes(0, 4) + le_bytes(parts.size(), 8) + le_bytes(parts.size(), 8) + le_bytes(central.size(), 8) +
           le_bytes(cd, 8);
    out += le_bytes(0x07064b50, 4) + le_bytes(0, 4) + le_bytes(end64, 8) + le_bytes(1, 4);
  }
  out += le_bytes(0x06054b50, 4) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(zip64 ? 0xffff : parts.size(), 2) +
         le_bytes(zip64 ? 0xffff : parts.size(), 2) + le_bytes(central.size() | mask, 4) + le_bytes(cd | mask, 4) +
         le_bytes(0, 2);
  return out;
}

// Pickle pieces (protocol 2, as torch.save writes).
namespace pk {
// (Built with +=: GCC 12 warns falsely, -Wrestrict, on "literal" + std::string.)
inline std::string op(const char* code, const std::string& arg) {
  std::string s = code;
  s += arg;
  return s;
}
inline std::string str(const std::string& s) { return op("X", le_bytes(s.size(), 4) + s); }
inline std::string integer(int64_t v) {
  if (v >= 0 && v < 256) return op("K", le_bytes(uint64_t(v), 1));
  if (v >= INT32_MIN && v <= INT32_MAX) return op("J", le_bytes(uint64_t(uint32_t(int32_t(v))), 4));
  return op("\x8a\x08", le_bytes(uint64_t(v), 8));
}
inline std::string tuple(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (int64_t x : v) s += integer(x);
  return s + "t";
}
inline std::string global(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
inline std::string tensor(const std::string& key, int64_t storage_numel, int64_t offset, const std::vector<int64_t>& size,
                          const std::vector<int64_t>& stride, const std::string& storage_type = "FloatStorage") {
  return global("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") + global("torch", storage_type) +
         str(key) + str("cpu") + integer(storage_numel) + "tQ" + integer(offset) + tuple(size) + tuple(stride) +
         "\x89" + global("collections", "OrderedDict") + ")R" + "tR";
}
// "\x80\x02}(" name value ... "u."
inline std::string dict(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string s = "\x80\x02}(";
  for (const auto& [k, v] : items) s += str(k) + v;
  return s + "u.";
}
}  // namespace pk

inline std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// archive/data.pkl, the storages as archive/data/<key>, archive/version.
inline std::string torch_zip(const std::string& pkl, const std::vector<std::pair<std::string, std::string>>& storages,
                             bool zip64 = false) {
  std::vector<ZipPart> parts{{"archive/data.pkl", pkl}};
  for (const auto& [key, bytes] : storages) parts.push_back({"archive/data/" + key, bytes});
  parts.push_back({"archive/version", "3\n"});
  return make_zip(parts, zip64);
}

}  // namespace tpro::test
