// TensorBoard event files; see tfevents.h. Protobuf wire format by hand: a field is a varint
// key (number << 3 | wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32) then its value.
#include "train/tfevents.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/crc32.h"
#include "core/error.h"

namespace tpro {

namespace {

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(v);
}

void fixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += char((v >> (8 * i)) & 0xff);
}

void key(std::string& out, int field, int wire) { varint(out, uint64_t(field) << 3 | uint64_t(wire)); }

void bytes_field(std::string& out, int field, const std::string& s) {
  key(out, field, 2);
  varint(out, s.size());
  out += s;
}

void double_field(std::string& out, int field, double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  key(out, field, 1);
  fixed(out, u, 8);
}

std::string event_head(double wall_time, int64_t step) {
  std::string e;
  double_field(e, 1, wall_time);
  if (step != 0) {  // proto3: a zero int64 is not written
    key(e, 2, 0);
    varint(e, uint64_t(step));
  }
  return e;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string tf_event_file_version(double wall_time) {
  std::string e = event_head(wall_time, 0);
  bytes_field(e, 3, "brain.Event:2");
  return e;
}

std::string tf_event_scalar(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  bytes_field(v, 1, tag);
  uint32_t u;
  std::memcpy(&u, &value, 4);
  key(v, 2, 5);
  fixed(v, u, 4);
  std::string summary;
  bytes_field(summary, 1, v);
  std::string e = event_head(wall_time, step);
  bytes_field(e, 5, summary);
  return e;
}

std::string tf_record(const std::string& data) {
  std::string r;
  fixed(r, data.size(), 8);
  fixed(r, crc32c_masked(crc32c(r.data(), 8)), 4);
  r += data;
  fixed(r, crc32c_masked(crc32c(data.data(), data.size())), 4);
  return r;
}

TfEventsWriter::TfEventsWriter(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create the TensorBoard folder ", dir.string(), ": ", ec.message());
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof host - 1] = 0;
  const double t = now_seconds();
  // O_EXCL: two writers in one second of one process (tests) get distinct files.
  for (int n = 0; n < 1000 && !f_; ++n) {
    path_ = dir / cat("events.out.tfevents.", int64_t(t), ".", host, ".", getpid(), n ? cat(".", n) : "");
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) f_ = fdopen(fd, "wb");
    else if (errno != EEXIST) break;
  }
  if (!f_) fail("cannot create the TensorBoard event file ", path_.string(), ": ", std::strerror(errno));
  write(tf_record(tf_event_file_version(t)));
  flush();
}

TfEventsWriter::~TfEventsWriter() {
  if (f_) std::fclose(f_);
}

void TfEventsWriter::scalar(const std::string& tag, int64_t step, double value) {
  write(tf_record(tf_event_scalar(now_seconds(), step, tag, float(value))));
}

void TfEventsWriter::write(const std::string& record) {
  if (std::fwrite(record.data(), 1, record.size(), f_) != record.size())
    fail("cannot write the TensorBoard event file ", path_.string(), ": ", std::strerror(errno));
}

void TfEventsWriter::flush() {
  if (std::fflush(f_) != 0) fail("cannot write the TensorBoard event file ", path_.string(), ": ", std::strerror(errno));
}

}  // namespace tpro
