// PyTorch torch.save files of a dict of tensors (what PEFT and text-generation-webui's Training
// PRO write as adapter_model.bin): the zip archive (<archive>/data.pkl, <archive>/data/<key>)
// read with a restricted unpickler that interprets only the opcodes torch.save emits and
// resolves only an allowlist of globals (OrderedDict, _rebuild_tensor_v2, _rebuild_parameter,
// torch.{Float,Half,BFloat16}Storage). Nothing in a pickle is ever executed; any other global
// is an Error naming it. The legacy pre-1.6 format is refused. Contiguous tensors only.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/file.h"
#include "core/tensor.h"

namespace tpro {

// One tensor of the pickle: `numel(shape)` elements of `dtype` from element `offset` of storage `storage`.
struct PickledTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string storage;     // the key: its bytes are <archive>/data/<storage>
  int64_t storage_numel = 0;  // elements of the storage, as its persistent id says
  int64_t offset = 0;      // in elements
};

// The tensors of a data.pkl, in file order. Throws Error "<origin>: ..." naming the offset and
// opcode or global for anything but a dict (or OrderedDict) of name -> tensor.
std::vector<PickledTensor> parse_torch_pickle(std::string_view pkl, const std::string& origin);

class TorchFile {
 public:
  explicit TorchFile(const fs::path& path);  // validates the archive, the pickle and every storage
  // The same over bytes in memory (tests, fuzzing); origin names it in errors.
  static TorchFile from_bytes(std::string bytes, const std::string& origin);

  std::vector<std::string> names() const;  // in the pickle's order
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  TensorView view(const std::string& name) const;  // points into the file's bytes
  const std::string& origin() const { return origin_; }

 private:
  TorchFile() = default;
  void parse();
  const uint8_t* data() const;
  size_t size() const;

  MappedFile file_;
  std::unique_ptr<std::string> bytes_;  // from_bytes: owned, so a move keeps data() valid
  std::string origin_;
  std::vector<PickledTensor> tensors_;
  std::vector<size_t> begin_;  // byte offset of each tensor's first element in the archive
  std::map<std::string, size_t> index_;
};

}  // namespace tpro
