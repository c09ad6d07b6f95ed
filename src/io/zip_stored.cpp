// Stored-entries zip reader; see zip_stored.h. Layout (APPNOTE 4.3): local headers and data,
// then the central directory, then (zip64 end record, its locator,) the end-of-central-directory
// record, found by scanning back over at most a 64 KiB comment.
#include "io/zip_stored.h"

#include <set>

#include "core/crc32.h"
#include "core/error.h"

namespace tpro {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalLen = 30, kCentralLen = 46, kEndLen = 22, kZip64EndLen = 56, kZip64LocatorLen = 20;

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct End {
  uint64_t entries = 0, cd_size = 0, cd_offset = 0;
};

size_t find_end(const uint8_t* data, size_t size, const std::string& origin) {
  if (size < kEndLen) fail(origin, ": not a zip archive (", size, " bytes, shorter than its end record)");
  const size_t lowest = size - kEndLen > 0xffff ? size - kEndLen - 0xffff : 0;
  for (size_t at = size - kEndLen + 1; at-- > lowest;)
    if (le(data + at, 4) == kEndSig) return at;
  fail(origin, ": no zip end-of-central-directory record (hint: the file is truncated or not a zip archive)");
}

End read_end(const uint8_t* data, size_t size, const std::string& origin) {
  const size_t at = find_end(data, size, origin);
  const uint8_t* p = data + at;
  if (le(p + 4, 2) != 0 || le(p + 6, 2) != 0 || le(p + 8, 2) != le(p + 10, 2))
    fail(origin, ": a multi-disk zip archive is not supported");
  End e{le(p + 10, 2), le(p + 12, 4), le(p + 16, 4)};
  if (e.entries != 0xffff && e.cd_size != 0xffffffff && e.cd_offset != 0xffffffff) {
    if (e.cd_offset > at || e.cd_size > at - e.cd_offset)
      fail(origin, ": zip central directory (offset ", e.cd_offset, ", ", e.cd_size,
           " bytes) does not end before its end record at ", at, " (hint: the file is truncated)");
    return e;
  }
  // zip64: the locator sits right before the end record and points at the zip64 end record.
  if (at < kZip64LocatorLen || le(data + at - kZip64LocatorLen, 4) != kZip64LocatorSig)
    fail(origin, ": zip end record says zip64 but there is no zip64 locator before it");
  const uint8_t* loc = data + at - kZip64LocatorLen;
  const uint64_t end64 = le(loc + 8, 8);
  if (end64 > at - kZip64LocatorLen || at - kZip64LocatorLen - end64 < kZip64EndLen || le(data + end64, 4) != kZip64EndSig)
    fail(origin, ": zip64 end record offset ", end64, " does not point at a zip64 end record");
  const uint8_t* q = data + end64;
  if (le(q + 16, 4) != 0 || le(q + 20, 4) != 0 || le(q + 24, 8) != le(q + 32, 8))
    fail(origin, ": a multi-disk zip archive is not supported");
  e = {le(q + 32, 8), le(q + 40, 8), le(q + 48, 8)};
  if (e.cd_offset > end64 || e.cd_size > end64 - e.cd_offset)
    fail(origin, ": zip64 central directory (offset ", e.cd_offset, ", ", e.cd_size,
         " bytes) does not end before its end record (hint: the file is truncated)");
  return e;
}

// Replaces the 0xffff... fields of a central entry with its zip64 extra field's values (in the
// APPNOTE's order: size, compressed size, local header offset).
void apply_zip64_extra(const uint8_t* extra, size_t n, uint64_t* usize, uint64_t* csize, uint64_t* offset,
                       const std::string& where) {
  for (size_t at = 0; at + 4 <= n;) {
    const uint64_t id = le(extra + at, 2), len = le(extra + at + 2, 2);
    if (len > n - at - 4) fail(where, ": zip extra field runs past its entry");
    if (id == 0x0001) {
      const uint8_t* f = extra + at + 4;
      size_t used = 0;
      for (uint64_t* v : {usize, csize, offset}) {
        if (*v != 0xffffffff) continue;
        if (used + 8 > len) fail(where, ": zip64 extra field is too short");
        *v = le(f + used, 8);
        used += 8;
      }
      return;
    }
    at += 4 + size_t(len);
  }
  if (*usize == 0xffffffff || *csize == 0xffffffff || *offset == 0xffffffff)
    fail(where, ": zip entry needs a zip64 extra field and has none");
}

}  // namespace

std::vector<ZipEntry> read_zip_directory(const uint8_t* data, size_t size, const std::string& origin) {
  const End end = read_end(data, size, origin);
  if (end.entries > end.cd_size / kCentralLen)
    fail(origin, ": zip end record claims ", end.entries, " entries but the central directory has room for ",
         end.cd_size / kCentralLen);
  std::vector<ZipEntry> out;
  out.reserve(size_t(end.entries));
  std::set<std::string> names;
  size_t at = size_t(end.cd_offset);
  const size_t cd_end = size_t(end.cd_offset + end.cd_size);
  for (uint64_t i = 0; i < end.entries; ++i) {
    if (cd_end - at < kCentralLen || le(data + at, 4) != kCentralSig)
      fail(origin, ": zip central directory entry ", i, " at offset ", at, " is missing or corrupt");
    const uint8_t* c = data + at;
    const size_t name_len = le(c + 28, 2), extra_len = le(c + 30, 2), comment_len = le(c + 32, 2);
    if (cd_end - at - kCentralLen < name_len + extra_len + comment_len)
      fail(origin, ": zip central directory entry ", i, " runs past the directory");
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(c + kCentralLen), name_len);
    const std::string where = cat(origin, ": zip entry ", e.name);
    if (le(c + 8, 2) & 1) fail(where, " is encrypted");
    e.method = uint16_t(le(c + 10, 2));
    e.crc = uint32_t(le(c + 16, 4));
    uint64_t csize = le(c + 20, 4), usize = le(c + 24, 4), local = le(c + 42, 4);
    if (le(c + 34, 2) != 0 && le(c + 34, 2) != 0xffff) fail(where, " is on another disk");
    apply_zip64_extra(c + kCentralLen + name_len, extra_len, &usize, &csize, &local, where);
    if (e.method == 0 && csize != usize)
      fail(where, ": stored entry has compressed size ", csize, " but size ", usize);
    // The local header repeats the name; its own extra field (torch's alignment padding) may differ.
    if (local > end.cd_offset || end.cd_offset - local < kLocalLen || le(data + local, 4) != kLocalSig)
      fail(where, ": local header offset ", local, " does not point at a local header before the central directory");
    const uint8_t* l = data + local;
    const uint64_t begin = local + kLocalLen + le(l + 26, 2) + le(l + 28, 2);
    if (begin > end.cd_offset || csize > end.cd_offset - begin)
      fail(where, ": data (", csize, " bytes at offset ", begin, ") runs past the end of the entries (offset ",
           end.cd_offset, "; hint: the file is truncated)");
    e.offset = size_t(begin);
    e.size = size_t(csize);
    if (!names.insert(e.name).second) fail(where, " appears twice");
    out.push_back(std::move(e));
    at += kCentralLen + name_len + extra_len + comment_len;
  }
  return out;
}

std::string_view zip_entry_data(const uint8_t* data, const ZipEntry& e, const std::string& origin) {
  if (e.method != 0)
    fail(origin, ": zip entry ", e.name, " is compressed (method ", e.method,
         "); only stored entries are read (hint: torch.save writes them uncompressed; the archive was repacked)");
  const uint32_t got = crc32(data + e.offset, e.size);
  if (got != e.crc)
    fail(origin, ": zip entry ", e.name, " fails its CRC-32 check (hint: the file is corrupt or truncated)");
  return {reinterpret_cast<const char*>(data + e.offset), e.size};
}

}  // namespace tpro
