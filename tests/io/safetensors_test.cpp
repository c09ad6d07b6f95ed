// safetensors round trip, sharded folders, and a corpus of lying/corrupt files, each with its
// specific message.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/safetensors.h"
#include "common/test_util.h"

using namespace tpro;
using tpro::test::error_of;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("tpro_io_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A file with the given raw JSON header and `data_bytes` zero bytes of data.
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes, bool truncate_len = false) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xff);
  if (truncate_len) s.resize(5);
  else s += header + std::string(data_bytes, '\0');
  write_file_atomic(p, s);
}

}  // namespace

TEST(SafeTensors, RoundTrip) {
  auto d = temp_dir("rt");
  SafeTensorsWriter w;
  float a[6] = {1, 2, 3, 4, 5, 6};
  uint16_t b[2] = {0x3f80, 0xc000};
  w.add_f32("a", {2, 3}, a);
  w.add("b.weight", DType::BF16, {2}, b);
  w.set_metadata("format", "pt");
  w.write(d / "m.safetensors");
  SafeTensorsFile f(d / "m.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  auto va = f.view("a");
  EXPECT_EQ(va.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(va.f32()[5], 6.0f);
  auto vb = f.view("b.weight");
  EXPECT_EQ(vb.dtype, DType::BF16);
  EXPECT_EQ(bf16_to_f32(static_cast<uint16_t*>(vb.data)[1]), -2.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(va.data) % 8, 0u);
}

TEST(SafeTensors, ShardedIndex) {
  auto d = temp_dir("shard");
  float x[2] = {1, 2}, y[3] = {3, 4, 5};
  SafeTensorsWriter w1, w2;
  w1.add_f32("x", {2}, x);
  w2.add_f32("y", {3}, y);
  w1.write(d / "model-00001-of-00002.safetensors");
  w2.write(d / "model-00002-of-00002.safetensors");
  write_file_atomic(d / "model.safetensors.index.json",
                    R"({"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}})");
  auto src = TensorSource::open_dir(d);
  EXPECT_EQ(src.get("y", {3}).f32()[2], 5.0f);
  EXPECT_ERROR_HAS(src.get("y", {4}), "tensor y has shape (3,), expected (4,)");
  EXPECT_ERROR_HAS(src.get("z"), "missing tensor z");
  write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map":{"x":"nope.safetensors"}})");
  EXPECT_ERROR_HAS(TensorSource::open_dir(d), "shard nope.safetensors (for tensor x) does not exist");
  write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map":{"y":"model-00001-of-00002.safetensors"}})");
  EXPECT_ERROR_HAS(TensorSource::open_dir(d), "but that shard does not contain it");
}

TEST(SafeTensors, FolderAndIndexErrors) {
  auto d = temp_dir("index_bad");
  float x[2] = {1, 2};
  SafeTensorsWriter w;
  w.add_f32("x", {2}, x);
  w.write(d / "a.safetensors");
  w.write(d / "b.safetensors");
  // Without an index every *.safetensors is a shard, and a tensor may live in only one.
  std::string msg = error_of([&] { TensorSource::open_dir(d); });
  EXPECT_NE(msg.find("b.safetensors: tensor x also appears in a.safetensors"), std::string::npos) << msg;
  const auto index_error = [&](const std::string& json) {
    write_file_atomic(d / "model.safetensors.index.json", json);
    return error_of([&] { TensorSource::open_dir(d); });
  };
  msg = index_error(R"({"metadata":{}})");
  EXPECT_NE(msg.find("model.safetensors.index.json: missing \"weight_map\""), std::string::npos) << msg;
  msg = index_error(R"({"weight_map":["a.safetensors"]})");
  EXPECT_NE(msg.find("model.safetensors.index.json: missing \"weight_map\""), std::string::npos) << msg;
  msg = index_error(R"({"weight_map":{"x":1}})");
  EXPECT_NE(msg.find("model.safetensors.index.json: weight_map[x] is not a file name"), std::string::npos) << msg;
  msg = index_error("{\"weight_map\":");
  EXPECT_NE(msg.find("model.safetensors.index.json: not valid JSON"), std::string::npos) << msg;
  // The index picks one shard, so the duplicate in b.safetensors is not read.
  write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map":{"x":"b.safetensors"}})");
  auto src = TensorSource::open_dir(d);
  EXPECT_EQ(src.file_of("x").filename(), "b.safetensors");
  EXPECT_EQ(src.get("x", {2}).f32()[1], 2.0f);
}

TEST(SafeTensors, ShardsMustStayInsideTheModelFolder) {
  auto root = temp_dir("shard_escape");
  const fs::path d = root / "model", outside = root / "outside";
  fs::create_directories(d);
  fs::create_directories(outside);
  float x[2] = {1, 2};
  SafeTensorsWriter w;
  w.add_f32("x", {2}, x);
  w.write(outside / "stolen.safetensors");  // a valid file: only the path rule can refuse it
  const auto index_error = [&](const std::string& shard) {
    write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map":{"x":")" + shard + R"("}})");
    return error_of([&] { TensorSource::open_dir(d); });
  };
  const std::string index = (d / "model.safetensors.index.json").string();
  // By "..": refused before anything is opened.
  EXPECT_EQ(index_error("../outside/stolen.safetensors"),
            index + ": shard '../outside/stolen.safetensors' is outside the model folder " + d.string() +
                " (hint: an index names each shard by its file name inside the model folder)");
  // By an absolute path.
  const std::string abs = (outside / "stolen.safetensors").string();
  EXPECT_EQ(index_error(abs), index + ": shard '" + abs + "' is outside the model folder " + d.string() +
                                  " (hint: an index names each shard by its file name inside the model folder)");
  // By a symlink in the folder, for the index and for a folder without one.
  fs::create_symlink(outside / "stolen.safetensors", d / "model-00001.safetensors");
  const std::string real = fs::canonical(outside / "stolen.safetensors").string();
  EXPECT_EQ(index_error("model-00001.safetensors"),
            index + ": shard 'model-00001.safetensors' leads outside the model folder " + d.string() +
                " (it is a symlink to " + real + "; hint: copy the shard into the model folder)");
  fs::remove(d / "model.safetensors.index.json");
  EXPECT_EQ(error_of([&] { safetensors_shards(d); }),
            d.string() + ": shard 'model-00001.safetensors' leads outside the model folder " + d.string() +
                " (it is a symlink to " + real + "; hint: copy the shard into the model folder)");
  // A link that stays inside the folder is fine.
  fs::remove(d / "model-00001.safetensors");
  w.write(d / "real.safetensors");
  fs::create_symlink("real.safetensors", d / "model-00001.safetensors");
  EXPECT_EQ(index_error("model-00001.safetensors"), "(no error)");
  EXPECT_EQ(TensorSource::open_dir(d).get("x", {2}).f32()[1], 2.0f);
}

TEST(SafeTensors, HubCacheSnapshotsMayLinkIntoTheirBlobs) {
  // huggingface_hub's cache: snapshots/<rev>/<file> -> ../../blobs/<sha>. `tpro train --model
  // <snapshot>` must keep working, while a link elsewhere is still refused.
  auto repo = temp_dir("hub_cache") / "models--org--tiny";
  const fs::path snap = repo / "snapshots" / "abc123";
  fs::create_directories(snap);
  fs::create_directories(repo / "blobs");
  float x[2] = {1, 2};
  SafeTensorsWriter w;
  w.add_f32("x", {2}, x);
  w.write(repo / "blobs" / "f00d");
  fs::create_symlink("../../blobs/f00d", snap / "model.safetensors");
  EXPECT_EQ(TensorSource::open_dir(snap).get("x", {2}).f32()[0], 1.0f);
  w.write(repo / "elsewhere.safetensors");
  fs::remove(snap / "model.safetensors");
  fs::create_symlink("../../elsewhere.safetensors", snap / "model.safetensors");
  EXPECT_ERROR_HAS(TensorSource::open_dir(snap), "shard 'model.safetensors' leads outside the model folder");
}

struct BadCase {
  const char* name;
  std::string header;
  size_t data;
  const char* message;
};

TEST(SafeTensors, CorruptFilesGiveSpecificErrors) {
  auto d = temp_dir("bad");
  const BadCase cases[] = {
      {"not json", "{nope", 0, "header is not valid JSON"},
      {"not object", "[1,2]", 0, "header is not a JSON object"},
      {"bad dtype", R"({"t":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1, "tensor t: unsupported dtype Q4"},
      {"no offsets", R"({"t":{"dtype":"F32","shape":[1]}})", 4, "\"data_offsets\" must be two non-negative integers"},
      {"size lies", R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12,
       "header says 12 bytes but dtype F32 × shape (2, 2) needs 16"},
      {"past end", R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8,
       "tensor t: data ends at byte 16 of the data section but it has only 8 bytes"},
      {"reversed", R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8, "data_offsets end 0 < begin 8"},
      {"negative dim", R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "non-integer or negative"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "tensors a and b overlap"},
      {"huge dims", R"({"t":{"dtype":"F32","shape":[1099511627775,1099511627775],"data_offsets":[0,4]}})", 4,
       "shape is too large"},
      // Found by fuzz/fuzz_safetensors' family: nlohmann's out_of_range escaped as a crash.
      {"number beyond double", R"({"t":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})", 4,
       "header is not valid JSON: [json.exception.out_of_range.406] number overflow"},
  };
  for (const auto& c : cases) {
    write_raw(d / "x.safetensors", c.header, c.data);
    std::string msg = error_of([&] { SafeTensorsFile f(d / "x.safetensors"); });
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.name << ": got " << msg;
    EXPECT_NE(msg.find("x.safetensors"), std::string::npos) << c.name << ": message must name the file";
  }
  write_raw(d / "y.safetensors", "{}", 0, /*truncate_len=*/true);
  EXPECT_ERROR_HAS(SafeTensorsFile f(d / "y.safetensors"), "shorter than the 8-byte header length");
  // Header length larger than the file.
  std::string s(8, '\0');
  s[0] = char(0xff);
  s[1] = char(0x10);
  write_file_atomic(d / "z.safetensors", s + "{}");
  EXPECT_ERROR_HAS(SafeTensorsFile f(d / "z.safetensors"), "points past the end of the file");
  EXPECT_ERROR_HAS(TensorSource::open_dir(d / "empty_nonexistent"), "no model.safetensors");
}
