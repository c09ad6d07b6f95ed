// safetensors: read (mmap, zero-copy views) and write (atomic). A header that lies — offsets
// past the end, a size that does not match dtype × shape, overlapping tensors, a header
// longer than the file — is an Error naming the file and the tensor, never a crash.
// Sharded checkpoints (model.safetensors.index.json) are opened as one TensorSource.
// Spec: https://github.com/huggingface/safetensors (8-byte LE header length, JSON header, data).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/file.h"
#include "core/tensor.h"

namespace tpro {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte offsets within the data section
};

class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const fs::path& path);  // validates the whole header
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  TensorView view(const std::string& name) const;  // points into the mapping
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const fs::path& path() const { return file_.path(); }

 private:
  MappedFile file_;
  size_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// The shard files of a model folder: the ones model.safetensors.index.json names, else
// model.safetensors, else every *.safetensors. Each must stay inside the folder: a name that
// is absolute or holds "..", or a symlink that leads out, is an Error naming the shard and the
// folder (except a Hugging Face hub cache snapshot's links into its repo's blobs/ folder).
std::vector<fs::path> safetensors_shards(const fs::path& dir);

// All tensors of a model folder (the files safetensors_shards names) as one source.
class TensorSource {
 public:
  static TensorSource open_dir(const fs::path& dir);
  static TensorSource open_file(const fs::path& file);
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  // Throws "<file>: tensor <name> ..." errors for a missing tensor or a wrong shape.
  TensorView get(const std::string& name) const;
  TensorView get(const std::string& name, const std::vector<int64_t>& want_shape) const;
  const fs::path& file_of(const std::string& name) const;
  std::vector<std::string> names() const;
  std::string describe() const;  // "model.safetensors" or "3 shards in <dir>"

 private:
  std::vector<std::unique_ptr<SafeTensorsFile>> files_;
  std::map<std::string, size_t> where_;
  fs::path dir_;
};

// Collects tensors (copied) and writes one safetensors file atomically, names sorted.
class SafeTensorsWriter {
 public:
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const float* data) {
    add(name, DType::F32, std::move(shape), data);
  }
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void write(const fs::path& path) const;

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace tpro
