// report_to tensorboard: the event records byte for byte (a hand-encoded golden Event), and a
// training run's <adapter>/runs/ files decoded back by the reader below (its own record framing
// and protobuf decoding, every CRC checked): loss, learning rate, grad norm, tokens/s and eval
// loss at the steps the run reported, a new file per run, and wandb refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/crc32.h"
#include "train/params.h"
#include "train/tfevents.h"
#include "train/trainer_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version, tag;
  float value = 0;
};

uint64_t le(const std::string& s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | uint8_t(s.at(at + size_t(i)));
  return v;
}

uint64_t varint(const std::string& s, size_t* at) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const uint8_t b = uint8_t(s.at((*at)++));
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  ADD_FAILURE() << "varint too long";
  return v;
}

// Calls f(field, wire type, payload) for each field of message `m` (varints and fixeds as bytes).
template <typename F>
void fields(const std::string& m, F f) {
  size_t at = 0;
  while (at < m.size()) {
    const uint64_t key = varint(m, &at);
    const int field = int(key >> 3), wire = int(key & 7);
    size_t n = 0;
    if (wire == 0) {
      const size_t from = at;
      varint(m, &at);
      f(field, wire, m.substr(from, at - from));
      continue;
    }
    if (wire == 1) n = 8;
    else if (wire == 5) n = 4;
    else if (wire == 2) n = size_t(varint(m, &at));
    else ADD_FAILURE() << "wire type " << wire;
    f(field, wire, m.substr(at, n));
    at += n;
  }
}

Event decode_event(const std::string& data) {
  Event e;
  fields(data, [&](int field, int, const std::string& p) {
    if (field == 1) std::memcpy(&e.wall_time, p.data(), 8);
    if (field == 2) {
      size_t at = 0;
      e.step = int64_t(varint(p, &at));
    }
    if (field == 3) e.file_version = p;
    if (field == 5)
      fields(p, [&](int f1, int, const std::string& value) {
        ASSERT_EQ(f1, 1);
        fields(value, [&](int f2, int, const std::string& v) {
          if (f2 == 1) e.tag = v;
          if (f2 == 2) std::memcpy(&e.value, v.data(), 4);
        });
      });
  });
  return e;
}

// Every record of a tfevents file, its two masked CRC-32Cs checked.
std::vector<Event> read_events(const fs::path& file) {
  const std::string s = read_file(file);
  std::vector<Event> out;
  size_t at = 0;
  while (at < s.size()) {
    EXPECT_LE(at + 12, s.size()) << "torn record header at " << at;
    const uint64_t len = le(s, at, 8);
    EXPECT_EQ(le(s, at + 8, 4), crc32c_masked(crc32c(s.data() + at, 8))) << "length CRC at " << at;
    EXPECT_LE(at + 12 + len + 4, s.size()) << "torn record at " << at;
    const std::string data = s.substr(at + 12, size_t(len));
    EXPECT_EQ(le(s, at + 12 + size_t(len), 4), crc32c_masked(crc32c(data.data(), data.size()))) << "data CRC at " << at;
    out.push_back(decode_event(data));
    at += 12 + size_t(len) + 4;
  }
  return out;
}

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

// tag -> (step, value) in file order.
std::map<std::string, std::vector<std::pair<int64_t, float>>> by_tag(const std::vector<Event>& events) {
  std::map<std::string, std::vector<std::pair<int64_t, float>>> m;
  for (const auto& e : events)
    if (!e.tag.empty()) m[e.tag].push_back({e.step, e.value});
  return m;
}

std::string hex(const std::string& s) {
  std::string h;
  char b[4];
  for (unsigned char c : s) std::snprintf(b, sizeof b, "%02x", c), h += b;
  return h;
}

}  // namespace

TEST(TfEvents, EncodesTheEventProtobufAndRecordFraming) {
  // Event{wall_time: 1.5, step: 3, summary {value {tag: "a", simple_value: 2.0}}}, by hand:
  // 09 <1.5 as LE double> | 10 03 | 2a 0a (Summary) 0a 08 (Value) 0a 01 'a' 15 <2.0f LE>.
  EXPECT_EQ(hex(tf_event_scalar(1.5, 3, "a", 2.0f)), "09000000000000f83f" "1003" "2a0a" "0a08" "0a0161" "1500000040");
  // Step 0 is proto3's default and is left out; file_version is field 3.
  EXPECT_EQ(hex(tf_event_file_version(0.0)), "090000000000000000" "1a0d" + hex("brain.Event:2"));
  const std::string r = tf_record("xyz");
  ASSERT_EQ(r.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(hex(r.substr(0, 8)), "0300000000000000");
  EXPECT_EQ(le(r, 8, 4), crc32c_masked(crc32c(r.data(), 8)));
  EXPECT_EQ(r.substr(12, 3), "xyz");
  EXPECT_EQ(le(r, 15, 4), crc32c_masked(crc32c("xyz", 3)));
  EXPECT_EQ(crc32c_masked(0), 0xa282ead8u);  // TensorFlow's mask: rotate right 15, add the constant
}

TEST(TfEvents, WriterFilesDecodeBack) {
  const fs::path dir = fresh_dir("tfevents");
  {
    TfEventsWriter w(dir / "runs");
    w.scalar("train/loss", 1, 2.75);
    w.scalar("train/loss", 2, -0.125);
    w.flush();
    EXPECT_THAT(w.path().filename().string(), HasSubstr("events.out.tfevents."));
  }
  TfEventsWriter second(dir / "runs");  // a second writer, same second, same process: its own file
  ASSERT_EQ(event_files(dir / "runs").size(), 2u);
  const std::vector<Event> ev = read_events(event_files(dir / "runs")[0]);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].file_version, "brain.Event:2");
  EXPECT_GT(ev[0].wall_time, 1.6e9);
  EXPECT_EQ(ev[1].tag, "train/loss");
  EXPECT_EQ(ev[1].step, 1);
  EXPECT_EQ(ev[1].value, 2.75f);
  EXPECT_EQ(ev[2].step, 2);
  EXPECT_EQ(ev[2].value, -0.125f);
  EXPECT_GE(ev[2].wall_time, ev[1].wall_time);
  write_file_atomic(dir / "file", "x");
  EXPECT_ERROR_HAS(TfEventsWriter(dir / "file" / "runs"), "cannot create the TensorBoard folder");
}

TEST(TfEvents, TrainingRunReportsToTensorboard) {
  Fixture f = make_fixture("tensorboard");
  f.p.report_to = "tensorboard";
  f.p.data.eval_split = 20;
  f.p.data.precize_slicing_overlap = false;
  f.p.eval_steps = 4;  // micro-batches: after steps 2 and 4
  f.p.max_steps = 4;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  EXPECT_TRUE(said(c, "TensorBoard events: " + (s.adapter_dir / "runs").string()));
  auto files = event_files(s.adapter_dir / "runs");
  ASSERT_EQ(files.size(), 1u);
  const auto tags = by_tag(read_events(files[0]));
  for (const char* t : {"train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "train/tokens_per_second"})
    ASSERT_EQ(tags.count(t), 1u) << t;
  ASSERT_EQ(tags.at("train/loss").size(), c.steps.size());
  for (size_t i = 0; i < c.steps.size(); ++i) {
    EXPECT_EQ(tags.at("train/loss")[i], std::make_pair(c.steps[i].step, float(c.steps[i].loss))) << i;
    EXPECT_EQ(tags.at("train/learning_rate")[i].second, float(c.steps[i].lr)) << i;
    EXPECT_EQ(tags.at("train/grad_norm")[i].second, float(c.steps[i].grad_norm)) << i;
    EXPECT_EQ(tags.at("train/tokens_per_second")[i].second, float(c.steps[i].tokens_per_s)) << i;
    EXPECT_GT(tags.at("train/tokens_per_second")[i].second, 0.0f) << i;
  }
  ASSERT_EQ(tags.at("eval/loss").size(), c.evals.size());
  ASSERT_GE(c.evals.size(), 2u);
  for (size_t i = 0; i < c.evals.size(); ++i)
    EXPECT_EQ(tags.at("eval/loss")[i], std::make_pair(c.evals[i].step, float(*c.evals[i].eval_loss))) << i;

  // Continuing the adapter is a new run: a new file beside the first, which stays as it was.
  const std::string first = read_file(files[0]);
  RunControl ctl2;
  Collected c2;
  run_training(f.p, ctl2, collect(c2));
  files = event_files(s.adapter_dir / "runs");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_file(files[0]), first);
  EXPECT_EQ(by_tag(read_events(files[1])).at("train/loss").size(), c2.steps.size());
}

TEST(TfEvents, WandbIsRefusedAndTrainingProsChoiceIsRead) {
  TrainParams p;
  p.model = "m";
  p.lora_name = "l";
  p.data.raw_text_file = "t.txt";
  p.report_to = "wandb";
  EXPECT_ERROR_HAS(validate(p), "report_to 'wandb' is not supported: tpro writes no wandb logs (hint: report_to "
                                "tensorboard writes TensorBoard event files into the adapter folder's runs/");
  const fs::path dir = fresh_dir("report_to");
  for (const char* v : {"None", "tensorboard", "wandb"}) {
    write_file_atomic(dir / "training_parameters.json", nlohmann::json{{"report_to", v}}.dump());
    TrainParams q;
    const auto ignored = copy_params_from(dir, q);
    EXPECT_EQ(q.report_to, std::string(v) == "wandb" ? "None" : v);
    EXPECT_EQ(ignored.size(), std::string(v) == "wandb" ? 1u : 0u) << v;
  }
  EXPECT_EQ(copy_params_note("report_to"), "wandb is not supported (report_to tensorboard writes TensorBoard event files)");
}
