// safetensors reader/writer; see safetensors.h.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tpro {

using nlohmann::json;

namespace {
constexpr uint64_t kMaxHeader = 100ull << 20;  // the spec's 100 MB limit

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

TensorInfo parse_tensor_entry(const std::string& where, const std::string& name, const json& e) {
  if (!e.is_object()) fail(where, ": tensor ", name, ": header entry is not an object");
  TensorInfo ti;
  ti.name = name;
  if (!e.contains("dtype") || !e["dtype"].is_string()) fail(where, ": tensor ", name, ": missing \"dtype\"");
  std::string dt = e["dtype"];
  if (!dtype_from_name(dt, &ti.dtype))
    fail(where, ": tensor ", name, ": unsupported dtype ", dt, " (hint: tpro reads F32, F16, BF16, F64, I64, I32, U8, I8)");
  if (!e.contains("shape") || !e["shape"].is_array()) fail(where, ": tensor ", name, ": missing \"shape\"");
  uint64_t numel = 1;
  for (const auto& d : e["shape"]) {
    if (!d.is_number_unsigned()) fail(where, ": tensor ", name, ": shape has a non-integer or negative dimension");
    uint64_t v = d.get<uint64_t>();
    if (v > (1ull << 40) || (v && numel > (1ull << 50) / v)) fail(where, ": tensor ", name, ": shape is too large");
    numel *= v;
    ti.shape.push_back(int64_t(v));
  }
  const auto& off = e.contains("data_offsets") ? e["data_offsets"] : json();
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    fail(where, ": tensor ", name, ": \"data_offsets\" must be two non-negative integers");
  ti.begin = off[0].get<uint64_t>();
  ti.end = off[1].get<uint64_t>();
  if (ti.end < ti.begin) fail(where, ": tensor ", name, ": data_offsets end ", ti.end, " < begin ", ti.begin);
  const uint64_t want = numel * dtype_size(ti.dtype);
  if (ti.end - ti.begin != want)
    fail(where, ": tensor ", name, ": header says ", ti.end - ti.begin, " bytes but dtype ", dt, " × shape ",
         shape_str(ti.shape), " needs ", want);
  return ti;
}
}  // namespace

SafeTensorsFile::SafeTensorsFile(const fs::path& path) : file_(path) {
  const std::string where = path.string();
  const size_t size = file_.size();
  if (size < 8) fail(where, ": not a safetensors file (", size, " bytes, shorter than the 8-byte header length)");
  const uint64_t n = read_le64(file_.data());
  if (n > kMaxHeader || n > size - 8)
    fail(where, ": header length ", n, " points past the end of the file (", size,
         " bytes) (hint: the file is truncated or not safetensors)");
  data_start_ = 8 + size_t(n);
  json header;
  try {
    header = json::parse(file_.data() + 8, file_.data() + data_start_);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for "1e400"
    fail(where, ": header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) fail(where, ": header is not a JSON object");
  const size_t data_size = size - data_start_;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail(where, ": __metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m)
        if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    TensorInfo ti = parse_tensor_entry(where, it.key(), it.value());
    if (ti.end > data_size)
      fail(where, ": tensor ", ti.name, ": data ends at byte ", ti.end, " of the data section but it has only ",
           data_size, " bytes (hint: the file is truncated)");
    index_[ti.name] = tensors_.size();
    tensors_.push_back(std::move(ti));
  }
  // Overlapping tensors would alias memory; the spec forbids them.
  std::vector<const TensorInfo*> by_off;
  for (const auto& t : tensors_) by_off.push_back(&t);
  std::sort(by_off.begin(), by_off.end(), [](auto a, auto b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_off.size(); ++i)
    if (by_off[i]->begin < by_off[i - 1]->end && by_off[i]->end > by_off[i]->begin)
      fail(where, ": tensors ", by_off[i - 1]->name, " and ", by_off[i]->name, " overlap in the data section");
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(path().string(), ": no tensor named ", name);
  return tensors_[it->second];
}

TensorView SafeTensorsFile::view(const std::string& name) const {
  const TensorInfo& ti = info(name);
  return TensorView(const_cast<uint8_t*>(file_.data() + data_start_ + ti.begin), ti.dtype, ti.shape);
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

TensorSource TensorSource::open_file(const fs::path& file) {
  TensorSource src;
  src.dir_ = file.parent_path();
  src.files_.push_back(std::make_unique<SafeTensorsFile>(file));
  for (const auto& n : src.files_[0]->names()) src.where_[n] = 0;
  return src;
}

namespace {

// What open_dir reads: the shard files and, with an index, which shard holds each tensor.
struct ShardPlan {
  fs::path index;                                      // empty without model.safetensors.index.json
  std::vector<fs::path> shards;                        // dir / name, checked by checked_shard
  std::vector<std::pair<std::string, size_t>> where;  // index: tensor -> shards[i]
};

// A shard named `name` (by the index or a listing of dir) as a path inside dir. It must stay
// there: an absolute name, a ".." or a symlink that leads out is refused. A Hugging Face hub
// cache snapshot (<repo>/snapshots/<rev>/) holds links into <repo>/blobs/; those stay allowed.
fs::path checked_shard(const fs::path& dir, const std::string& name, const std::string& origin,
                       const std::string& tensor) {
  const fs::path rel(name);
  bool dotdot = false;
  for (const fs::path& part : rel) dotdot = dotdot || part == "..";
  if (name.empty() || rel.has_root_path() || dotdot)
    fail(origin, ": shard '", name, "' is outside the model folder ", dir.string(),
         " (hint: an index names each shard by its file name inside the model folder)");
  std::error_code ec;
  const fs::path real = fs::canonical(dir / rel, ec);
  if (ec) fail(origin, ": shard ", name, tensor.empty() ? "" : " (for tensor " + tensor + ")", " does not exist");
  const fs::path base = fs::canonical(dir, ec);
  const bool snapshot = base.parent_path().filename() == "snapshots";
  if (!is_within(base, real) && !(snapshot && is_within(base.parent_path().parent_path() / "blobs", real)))
    fail(origin, ": shard '", name, "' leads outside the model folder ", dir.string(), " (it is a symlink to ",
         real.string(), "; hint: copy the shard into the model folder)");
  return dir / rel;
}

ShardPlan plan_shards(const fs::path& dir) {
  ShardPlan plan;
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    plan.index = index;
    json j;
    try {
      j = json::parse(read_file(index));
    } catch (const json::exception& e) {  // parse_error, or out_of_range for "1e400"
      fail(index.string(), ": not valid JSON: ", e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) fail(index.string(), ": missing \"weight_map\"");
    std::map<std::string, size_t> shard_idx;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail(index.string(), ": weight_map[", it.key(), "] is not a file name");
      const std::string f = it.value();
      if (!shard_idx.count(f)) {
        plan.shards.push_back(checked_shard(dir, f, index.string(), it.key()));
        shard_idx[f] = plan.shards.size() - 1;
      }
      plan.where.emplace_back(it.key(), shard_idx[f]);
    }
    return plan;
  }
  std::vector<std::string> names;
  if (fs::exists(dir / "model.safetensors")) {
    names.push_back("model.safetensors");
  } else if (fs::is_directory(dir)) {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
  }
  if (names.empty())
    fail(dir.string(), ": no model.safetensors, model.safetensors.index.json or *.safetensors found",
         " (hint: pass a Hugging Face model folder; .bin/.pt checkpoints are not supported)");
  for (const auto& n : names) plan.shards.push_back(checked_shard(dir, n, dir.string(), ""));
  return plan;
}

}  // namespace

std::vector<fs::path> safetensors_shards(const fs::path& dir) { return plan_shards(dir).shards; }

TensorSource TensorSource::open_dir(const fs::path& dir) {
  TensorSource src;
  src.dir_ = dir;
  const ShardPlan plan = plan_shards(dir);
  for (const auto& p : plan.shards) src.files_.push_back(std::make_unique<SafeTensorsFile>(p));
  if (!plan.index.empty()) {
    for (const auto& [tensor, k] : plan.where) {
      if (!src.files_[k]->has(tensor))
        fail(plan.index.string(), ": tensor ", tensor, " is mapped to ", plan.shards[k].filename().string(),
             " but that shard does not contain it");
      src.where_[tensor] = k;
    }
    return src;
  }
  for (size_t k = 0; k < src.files_.size(); ++k) {
    for (const auto& n : src.files_[k]->names()) {
      if (src.where_.count(n))
        fail(plan.shards[k].string(), ": tensor ", n, " also appears in ",
             src.files_[src.where_[n]]->path().filename().string());
      src.where_[n] = k;
    }
  }
  return src;
}

TensorView TensorSource::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end())
    fail(describe(), ": missing tensor ", name, " (hint: the checkpoint does not match its config.json)");
  return files_[it->second]->view(name);
}

TensorView TensorSource::get(const std::string& name, const std::vector<int64_t>& want) const {
  TensorView v = get(name);
  if (v.shape != want)
    fail(file_of(name).string(), ": tensor ", name, " has shape ", shape_str(v.shape), ", expected ", shape_str(want),
         " from config.json");
  return v;
}

const fs::path& TensorSource::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(describe(), ": missing tensor ", name);
  return files_[it->second]->path();
}

std::vector<std::string> TensorSource::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : where_) out.push_back(n);
  return out;
}

std::string TensorSource::describe() const {
  if (files_.size() == 1) return files_[0]->path().string();
  return cat(files_.size(), " safetensors shards in ", dir_.string());
}

void SafeTensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  Entry e{dtype, std::move(shape), std::string(static_cast<const char*>(data), size_t(n) * dtype_size(dtype))};
  tensors_[name] = std::move(e);
}

void SafeTensorsWriter::write(const fs::path& path) const {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  size_t off = 0;
  for (const auto& [name, e] : tensors_) {
    header[name] = {{"dtype", std::string(dtype_name(e.dtype))}, {"shape", e.shape},
                    {"data_offsets", {off, off + e.bytes.size()}}};
    off += e.bytes.size();
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h.push_back(' ');  // data starts 8-byte aligned
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t((uint64_t(h.size()) >> (8 * i)) & 0xff);
  AtomicFileWriter w(path);
  w.write(len, 8);
  w.write(h.data(), h.size());
  for (const auto& [name, e] : tensors_) w.write(e.bytes.data(), e.bytes.size());
  w.commit();
}

}  // namespace tpro
