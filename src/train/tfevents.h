// TensorBoard event files (report_to: tensorboard), written by our own code: a TFRecord stream
// of tensorflow.Event protobufs, each record = uint64 length, masked CRC-32C of the length, the
// serialized Event, masked CRC-32C of it. Only the fields a scalar needs are encoded:
// Event{wall_time=1 double, step=2 int64, file_version=3 string, summary=5 Summary},
// Summary{value=1 repeated Value}, Value{tag=1 string, simple_value=2 float}.
// References: tensorflow/core/util/event.proto, tensorflow/core/lib/io/record_writer.cc.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/file.h"

namespace tpro {

// One serialized Event (the protobuf bytes), for the writer and for tests.
std::string tf_event_file_version(double wall_time);  // file_version "brain.Event:2"
std::string tf_event_scalar(double wall_time, int64_t step, const std::string& tag, float value);
// A TFRecord framing of `data`.
std::string tf_record(const std::string& data);

// Appends records to <dir>/events.out.tfevents.<unix seconds>.<host>.<pid> (a new file per run,
// as transformers' SummaryWriter does, so a resumed run adds a file beside the earlier ones),
// flushed after each step so TensorBoard follows a running job. A stream, not an atomic file:
// a killed run leaves every whole record readable (TensorBoard stops at a torn last record).
class TfEventsWriter {
 public:
  explicit TfEventsWriter(const fs::path& dir);  // throws Error naming the file
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  void scalar(const std::string& tag, int64_t step, double value);  // wall time: now
  void flush();  // throws Error naming the file on a write failure
  const fs::path& path() const { return path_; }

 private:
  void write(const std::string& record);
  fs::path path_;
  std::FILE* f_ = nullptr;
};

}  // namespace tpro
