// A zip archive of stored (uncompressed) entries written as a stream: local header, bytes,
// then the central directory and end records (zip64 ones when an entry, an offset or the
// count does not fit the classic fields), so the reader in zip_stored.h, unzip and Python's
// zipfile open it. Each entry's size and CRC-32 are given before its bytes (the caller reads a
// file once to checksum it), so nothing is seeked back over. No compression, no encryption.
// Spec: PKWARE APPNOTE.TXT 4.3 (4.3.7 local header, 4.3.12 central header, 4.5.3 zip64 extra).
#pragma once
#include <cstdint>
#include <ctime>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace tpro {

class ZipStoredWriter {
 public:
  using Sink = std::function<void(const void* data, size_t n)>;
  // force_zip64: every entry and the end records in their zip64 forms (tests; large archives
  // need them anyway).
  explicit ZipStoredWriter(Sink sink, bool force_zip64 = false) : sink_(std::move(sink)), force64_(force_zip64) {}

  // Starts an entry of `size` bytes whose CRC-32 is `crc`. The name is a relative path with
  // '/' separators: an empty, absolute, backslashed or ".." name, a duplicate, or one over
  // 65535 bytes throws Error. mtime is shown by unzip (local time, 2-second steps).
  void begin_entry(const std::string& name, uint64_t size, uint32_t crc, std::time_t mtime);
  // The entry's bytes, in order; the sum over calls must be the size given (Error otherwise).
  void write(const void* data, size_t n);
  // The central directory and end records; the archive is complete after this.
  void finish();

  uint64_t bytes_written() const { return offset_; }
  size_t entries() const { return entries_.size(); }

 private:
  struct Entry {
    std::string name;
    uint64_t size = 0, offset = 0;
    uint32_t crc = 0;
    uint16_t dos_time = 0, dos_date = 0;
    bool zip64 = false;
  };
  void emit(const std::string& bytes);
  void end_entry_check() const;

  Sink sink_;
  bool force64_ = false, finished_ = false;
  uint64_t offset_ = 0, left_ = 0;  // left_: bytes still owed to the open entry
  std::vector<Entry> entries_;
  std::set<std::string> names_;
};

}  // namespace tpro
