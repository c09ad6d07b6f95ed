// Stored-entries zip writer; see zip_writer.h. Every 0xffffffff field of a zip64 entry is
// given in its zip64 extra field, in the APPNOTE's order (size, compressed size, offset).
#include "io/zip_writer.h"

#include "core/error.h"

namespace tpro {

namespace {

constexpr uint64_t k32 = 0xffffffffu;

std::string le(uint64_t v, int n) {
  std::string s(size_t(n), '\0');
  for (int i = 0; i < n; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return s;
}

void check_name(const std::string& name) {
  auto bad = [&](const char* why) { fail("zip entry name '", name, "' ", why); };
  if (name.empty()) bad("is empty");
  if (name.size() > 0xffff) bad("is longer than 65535 bytes");
  if (name.front() == '/') bad("is absolute");
  if (name.find('\\') != std::string::npos) bad("holds a backslash (zip names use '/')");
  if (name.find('\0') != std::string::npos) bad("holds a NUL byte");
  for (size_t at = 0; at <= name.size();) {
    size_t end = name.find('/', at);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(at, end - at);
    if (part == ".." || part == "." || (part.empty() && end != name.size())) bad("has an empty, '.' or '..' part");
    at = end + 1;
  }
}

// MS-DOS date and time (APPNOTE 4.4.6), local time; 1980-01-01 for anything earlier.
void dos_stamp(std::time_t t, uint16_t* time, uint16_t* date) {
  std::tm tm{};
  if (!localtime_r(&t, &tm) || tm.tm_year < 80) {
    *time = 0;
    *date = uint16_t((0 << 9) | (1 << 5) | 1);
    return;
  }
  *time = uint16_t((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
  *date = uint16_t(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

}  // namespace

void ZipStoredWriter::emit(const std::string& bytes) {
  sink_(bytes.data(), bytes.size());
  offset_ += bytes.size();
}

void ZipStoredWriter::end_entry_check() const {
  if (left_ != 0)
    fail("zip entry '", entries_.back().name, "' got ", entries_.back().size - left_, " of its ", entries_.back().size,
         " bytes before the next entry (hint: the file changed while it was archived)");
}

void ZipStoredWriter::begin_entry(const std::string& name, uint64_t size, uint32_t crc, std::time_t mtime) {
  if (finished_) fail("zip archive already finished: no entry '", name, "' can be added");
  end_entry_check();
  check_name(name);
  if (!names_.insert(name).second) fail("zip entry name '", name, "' appears twice");
  Entry e{name, size, offset_, crc, 0, 0, force64_ || size >= k32 || offset_ >= k32};
  dos_stamp(mtime, &e.dos_time, &e.dos_date);
  const std::string extra = e.zip64 ? le(1, 2) + le(16, 2) + le(size, 8) + le(size, 8) : std::string();
  const uint64_t shown = e.zip64 ? k32 : size;
  emit(le(0x04034b50, 4) + le(e.zip64 ? 45 : 20, 2) + le(1 << 11, 2) /* UTF-8 names */ + le(0, 2) +
       le(e.dos_time, 2) + le(e.dos_date, 2) + le(crc, 4) + le(shown, 4) + le(shown, 4) + le(name.size(), 2) +
       le(extra.size(), 2) + name + extra);
  entries_.push_back(std::move(e));
  left_ = size;
}

void ZipStoredWriter::write(const void* data, size_t n) {
  if (entries_.empty() || finished_ || n > left_)
    fail("zip entry '", entries_.empty() ? std::string() : entries_.back().name, "': ", n,
         " bytes written past its declared size (hint: the file grew while it was archived)");
  sink_(data, n);
  offset_ += n;
  left_ -= n;
}

void ZipStoredWriter::finish() {
  if (finished_) return;
  end_entry_check();
  const uint64_t cd_offset = offset_;
  for (const Entry& e : entries_) {
    const std::string extra =
        e.zip64 ? le(1, 2) + le(24, 2) + le(e.size, 8) + le(e.size, 8) + le(e.offset, 8) : std::string();
    const uint64_t size = e.zip64 ? k32 : e.size, at = e.zip64 ? k32 : e.offset;
    // Made by Unix (3 << 8), version 4.5; external attributes: a regular file, rw-r--r--.
    emit(le(0x02014b50, 4) + le((3 << 8) | 45, 2) + le(e.zip64 ? 45 : 20, 2) + le(1 << 11, 2) + le(0, 2) +
         le(e.dos_time, 2) + le(e.dos_date, 2) + le(e.crc, 4) + le(size, 4) + le(size, 4) + le(e.name.size(), 2) +
         le(extra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(uint64_t(0100644) << 16, 4) + le(at, 4) + e.name +
         extra);
  }
  const uint64_t cd_size = offset_ - cd_offset, n = entries_.size();
  const bool zip64 = force64_ || n >= 0xffff || cd_offset >= k32 || cd_size >= k32;
  if (zip64) {
    const uint64_t end64 = offset_;
    emit(le(0x06064b50, 4) + le(44, 8) + le((3 << 8) | 45, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(n, 8) +
         le(n, 8) + le(cd_size, 8) + le(cd_offset, 8));
    emit(le(0x07064b50, 4) + le(0, 4) + le(end64, 8) + le(1, 4));
  }
  emit(le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(zip64 ? 0xffff : n, 2) + le(zip64 ? 0xffff : n, 2) +
       le(zip64 ? k32 : cd_size, 4) + le(zip64 ? k32 : cd_offset, 4) + le(0, 2));
  finished_ = true;
}

}  // namespace tpro
