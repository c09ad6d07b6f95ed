// GGUF parsing and validation (see gguf.h). Order of checks: each read is bounds-checked;
// each count is checked against the bytes left before a vector is sized; shapes are checked
// for negative dimensions and int64 overflow; types must be known and rows whole blocks;
// offsets must be aligned, inside the file, and tensors must not overlap.
#include "io/gguf.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <numeric>

#include "core/tensor.h"

namespace tpro {

namespace {
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr size_t kMinKvBytes = 8 + 4 + 1;                 // empty key, type, one-byte value
constexpr size_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one ne, type, offset
}  // namespace

// A cursor over the mapping: every read is checked against the bytes left.
class GgufReader {
 public:
  GgufReader(const uint8_t* data, size_t size, std::string where) : data_(data), size_(size), where_(std::move(where)) {}

  size_t pos = 0;
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos; }
  const uint8_t* ptr() const { return data_ + pos; }

  template <typename... A>
  [[noreturn]] void fail_at(size_t at, const A&... a) const {
    fail("GGUF ", where_, " at byte ", at, ": ", a...);
  }
  void need(size_t n, std::string_view what) const {
    if (n > remaining()) fail_at(pos, "truncated file: ", what, " needs ", n, " bytes but only ", remaining(), " remain");
  }
  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string read_string(std::string_view what) {
    const size_t at = pos;
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      fail_at(at, "string length ", len, " of ", what, " runs past the end of the file (", remaining(), " bytes remain)");
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos), size_t(len));
    pos += size_t(len);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  std::string where_;
};

namespace {

GgufType read_type(GgufReader& r, const std::string& key) {
  const size_t at = r.pos;
  const uint32_t t = r.read<uint32_t>(cat("the value type of '", key, "'"));
  if (t >= kGgufTypeCount) r.fail_at(at, "metadata '", key, "' has unknown value type ", t);
  return GgufType(t);
}

bool read_bool(GgufReader& r, const std::string& key) {
  const size_t at = r.pos;
  const uint8_t b = r.read<uint8_t>(cat("a bool of '", key, "'"));
  if (b > 1) r.fail_at(at, "metadata '", key, "' has bool value ", int(b), " (expected 0 or 1)");
  return b == 1;
}

template <typename T>
std::vector<T> read_pod_array(GgufReader& r, uint64_t n) {  // n already checked against the file
  std::vector<T> v(static_cast<size_t>(n));
  if (n > 0) std::memcpy(v.data(), r.ptr(), size_t(n) * sizeof(T));  // an empty vector's data() may be null
  r.pos += size_t(n) * sizeof(T);
  return v;
}

GgufArray read_array(GgufReader& r, const std::string& key, int depth);

GgufArray read_array_elements(GgufReader& r, GgufType elem, uint64_t n, const std::string& key, int depth) {
  switch (elem) {
    case GgufType::U8: return read_pod_array<uint8_t>(r, n);
    case GgufType::I8: return read_pod_array<int8_t>(r, n);
    case GgufType::U16: return read_pod_array<uint16_t>(r, n);
    case GgufType::I16: return read_pod_array<int16_t>(r, n);
    case GgufType::U32: return read_pod_array<uint32_t>(r, n);
    case GgufType::I32: return read_pod_array<int32_t>(r, n);
    case GgufType::F32: return read_pod_array<float>(r, n);
    case GgufType::U64: return read_pod_array<uint64_t>(r, n);
    case GgufType::I64: return read_pod_array<int64_t>(r, n);
    case GgufType::F64: return read_pod_array<double>(r, n);
    case GgufType::BOOL: {
      std::vector<bool> v(static_cast<size_t>(n));
      for (uint64_t i = 0; i < n; ++i) v[size_t(i)] = read_bool(r, key);
      return v;
    }
    case GgufType::STRING: {
      std::vector<std::string> v;
      v.reserve(size_t(n));
      const std::string what = cat("a string in '", key, "'");
      for (uint64_t i = 0; i < n; ++i) v.push_back(r.read_string(what));
      return v;
    }
    case GgufType::ARRAY: {
      std::vector<GgufArray> v;
      v.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) v.push_back(read_array(r, key, depth + 1));
      return v;
    }
  }
  return {};
}

// An array value: element type, count, elements. Nested arrays repeat this layout.
GgufArray read_array(GgufReader& r, const std::string& key, int depth) {
  const size_t at = r.pos;
  if (depth > kMaxArrayDepth) r.fail_at(at, "metadata '", key, "' nests arrays more than ", kMaxArrayDepth, " deep");
  const GgufType elem = read_type(r, key);
  const uint64_t n = r.read<uint64_t>(cat("the element count of '", key, "'"));
  const size_t min_size = elem == GgufType::STRING ? 8 : elem == GgufType::ARRAY ? 12 : gguf_type_size(elem);
  if (n > r.remaining() / min_size) {
    r.fail_at(at, "array '", key, "' claims ", n, " ", gguf_type_name(elem), " elements but only ", r.remaining(),
              " bytes remain");
  }
  return read_array_elements(r, elem, n, key, depth);
}

GgufValue read_value(GgufReader& r, GgufType t, const std::string& key) {
  const std::string what = cat("the value of '", key, "'");
  switch (t) {
    case GgufType::U8: return r.read<uint8_t>(what);
    case GgufType::I8: return r.read<int8_t>(what);
    case GgufType::U16: return r.read<uint16_t>(what);
    case GgufType::I16: return r.read<int16_t>(what);
    case GgufType::U32: return r.read<uint32_t>(what);
    case GgufType::I32: return r.read<int32_t>(what);
    case GgufType::F32: return r.read<float>(what);
    case GgufType::U64: return r.read<uint64_t>(what);
    case GgufType::I64: return r.read<int64_t>(what);
    case GgufType::F64: return r.read<double>(what);
    case GgufType::BOOL: return read_bool(r, key);
    case GgufType::STRING: return r.read_string(what);
    case GgufType::ARRAY: return read_array(r, key, 1);
  }
  return {};
}

std::string magic_str(const uint8_t* m) {
  static const char* kHex = "0123456789abcdef";
  std::string text, hex;
  for (int i = 0; i < 4; ++i) {
    text += std::isprint(m[i]) ? char(m[i]) : '?';
    hex += cat(i ? " " : "", kHex[m[i] >> 4], kHex[m[i] & 15]);
  }
  return cat("'", text, "' (", hex, ")");
}

}  // namespace

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

GgufFile::GgufFile(const fs::path& path) : file_(path) { parse(); }

void GgufFile::parse() {
  GgufReader r(file_.data(), file_.size(), file_.path().string());
  r.need(4, "the magic");
  if (std::memcmp(r.ptr(), "GGUF", 4) != 0) r.fail_at(0, "not a GGUF file: magic is ", magic_str(r.ptr()), ", expected 'GGUF'");
  r.pos = 4;
  version_ = r.read<uint32_t>("the version");
  if (version_ != 2 && version_ != 3) {
    const char* hint = version_ == 1 ? " (hint: GGUF v1 is obsolete; re-convert the model with a current llama.cpp)"
                       : (version_ & 0xFFFF) == 0 ? " (hint: this looks like a big-endian GGUF file)"
                                                  : " (hint: the file may come from a newer llama.cpp than tpro knows)";
    r.fail_at(4, "unsupported GGUF version ", version_, " (expected 2 or 3)", hint);
  }
  const uint64_t n_tensors = r.read<uint64_t>("the tensor count");
  const uint64_t n_kv = r.read<uint64_t>("the metadata count");
  if (n_tensors > r.remaining() / kMinTensorInfoBytes) {
    r.fail_at(8, "tensor count ", n_tensors, " cannot fit in the file (a tensor info takes at least ",
              kMinTensorInfoBytes, " bytes and ", r.remaining(), " remain)");
  }
  if (n_kv > r.remaining() / kMinKvBytes) {
    r.fail_at(16, "metadata count ", n_kv, " cannot fit in the file (an entry takes at least ", kMinKvBytes,
              " bytes and ", r.remaining(), " remain)");
  }
  parse_metadata(r, n_kv);
  parse_tensor_infos(r, n_tensors);
}

void GgufFile::parse_metadata(GgufReader& r, uint64_t n_kv) {
  kv_.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const size_t at = r.pos;
    std::string key = r.read_string(cat("the key of metadata entry ", i));
    if (kv_index_.count(key)) r.fail_at(at, "duplicate metadata key '", key, "'");
    const GgufType t = read_type(r, key);
    GgufValue v = read_value(r, t, key);
    kv_index_.emplace(key, kv_.size());
    kv_at_.push_back(at);
    kv_.push_back({std::move(key), std::move(v)});
  }
  if (has("general.alignment")) {
    alignment_ = get_u32("general.alignment");
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
      r.fail_at(kv_at_[kv_index_.find("general.alignment")->second], "general.alignment is ", alignment_,
                ", not a power of two");
    }
  }
}

namespace {

// One tensor info: name, n_dims, ne[n_dims], type, offset. Checks shape, type and alignment.
GgufTensor read_tensor_info(GgufReader& r, uint64_t i, uint32_t alignment, size_t* offset_at) {
  const size_t at = r.pos;
  GgufTensor t;
  t.name = r.read_string(cat("the name of tensor ", i));
  if (t.name.empty()) r.fail_at(at, "tensor ", i, " has an empty name");
  const std::string& name = t.name;
  const size_t dims_at = r.pos;
  const uint32_t n_dims = r.read<uint32_t>(cat("the dimension count of tensor '", name, "'"));
  if (n_dims == 0 || n_dims > kMaxDims) {
    r.fail_at(dims_at, "tensor '", name, "' has ", n_dims, " dimensions (expected 1 to ", kMaxDims, ")");
  }
  int64_t numel = 1;
  bool overflow = false;
  for (uint32_t j = 0; j < n_dims; ++j) {
    const size_t ne_at = r.pos;
    const int64_t ne = r.read<int64_t>(cat("dimension ", j, " of tensor '", name, "'"));
    if (ne < 0) r.fail_at(ne_at, "tensor '", name, "' dimension ", j, " is negative (", ne, ")");
    overflow |= __builtin_mul_overflow(numel, ne, &numel);
    t.ne.push_back(ne);
  }
  if (overflow) r.fail_at(dims_at, "tensor '", name, "' shape ", shape_str(t.ne), " has more than 2^63 - 1 elements");
  const size_t type_at = r.pos;
  const uint32_t type = r.read<uint32_t>(cat("the type of tensor '", name, "'"));
  const GgmlTypeInfo* info = ggml_type_info(type);
  if (!info) {
    r.fail_at(type_at, "tensor '", name, "' has unknown ggml type ", type,
              " (hint: the file may come from a newer llama.cpp than tpro knows)");
  }
  t.type = GgmlType(type);
  if (t.ne[0] % info->block != 0) {
    r.fail_at(type_at, "tensor '", name, "' of type ", info->name, " has ", t.ne[0],
              " elements per row, not a multiple of its block size ", info->block);
  }
  uint64_t nbytes = uint64_t(t.ne[0] / info->block) * info->type_size;  // < 2^63 / 32 * 292: fits
  for (uint32_t j = 1; j < n_dims; ++j) overflow |= __builtin_mul_overflow(nbytes, uint64_t(t.ne[j]), &nbytes);
  if (overflow || nbytes > uint64_t(SIZE_MAX)) {
    r.fail_at(dims_at, "tensor '", name, "' shape ", shape_str(t.ne), " of type ", info->name, " overflows a byte size");
  }
  t.nbytes = size_t(nbytes);
  *offset_at = r.pos;
  t.offset = r.read<uint64_t>(cat("the data offset of tensor '", name, "'"));
  if (t.offset % alignment != 0) {
    r.fail_at(*offset_at, "tensor '", name, "' data offset ", t.offset, " is not a multiple of the alignment ", alignment);
  }
  return t;
}

}  // namespace

void GgufFile::parse_tensor_infos(GgufReader& r, uint64_t n_tensors) {
  tensors_.reserve(size_t(n_tensors));
  std::vector<size_t> offset_at(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const size_t at = r.pos;
    GgufTensor t = read_tensor_info(r, i, alignment_, &offset_at[size_t(i)]);
    if (auto it = tensor_index_.find(t.name); it != tensor_index_.end()) {
      r.fail_at(at, "duplicate tensor name '", t.name, "' (tensors ", it->second, " and ", i, ")");
    }
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  data_offset_ = (r.pos + alignment_ - 1) / alignment_ * alignment_;
  check_tensor_data(offset_at);
}

void GgufFile::check_tensor_data(const std::vector<size_t>& offset_at) {
  GgufReader r(file_.data(), file_.size(), file_.path().string());
  const size_t avail = file_.size() > data_offset_ ? file_.size() - data_offset_ : 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensor& t = tensors_[i];
    if (t.offset > avail || t.nbytes > avail - t.offset) {
      r.fail_at(offset_at[i], "tensor '", t.name, "' needs ", t.nbytes, " bytes at data offset ", t.offset,
                " but the data section (from byte ", data_offset_, ") holds only ", avail,
                " bytes (hint: the file is truncated)");
    }
    t.data = file_.data() + data_offset_ + t.offset;
  }
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensor &a = tensors_[order[k - 1]], &b = tensors_[order[k]];
    if (a.nbytes > 0 && b.nbytes > 0 && a.offset + a.nbytes > b.offset) {
      r.fail_at(offset_at[order[k]], "tensors '", a.name, "' (data offset ", a.offset, ", ", a.nbytes, " bytes) and '",
                b.name, "' (data offset ", b.offset, ") overlap");
    }
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const GgufValue& GgufFile::value(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail("GGUF ", path().string(), ": missing metadata key '", key, "'");
  return *v;
}

void GgufFile::type_error(std::string_view key, std::string_view expected, const GgufValue& got) const {
  const size_t at = kv_at_[kv_index_.find(key)->second];
  fail("GGUF ", path().string(), " at byte ", at, ": metadata '", key, "' is ", gguf_describe(got), ", expected ",
       expected);
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue& v = value(key);
  int64_t out = 0;
  bool ok = true, integer = true;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          ok = !(std::is_same_v<T, uint64_t> && uint64_t(x) > uint64_t(INT64_MAX));
          out = int64_t(x);
        } else {
          integer = false;
        }
      },
      v.data);
  if (!integer) type_error(key, "an integer", v);
  if (!ok) fail("GGUF ", path().string(), ": metadata '", key, "' value ", std::get<uint64_t>(v.data), " does not fit in int64");
  return out;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  const GgufTensor* t = find_tensor(name);
  if (!t) fail("GGUF ", path().string(), ": no tensor named '", name, "'");
  return *t;
}

const GgufTensor& GgufFile::supported_tensor(std::string_view name) const {
  const GgufTensor& t = tensor(name);
  if (!ggml_type_supported(t.type)) {
    fail("GGUF ", path().string(), ": tensor '", name, "' has type ", ggml_type_name(t.type),
         ", which tpro cannot compute with (supported: ", ggml_supported_types(),
         ") (hint: requantize the model to one of those with llama-quantize, or load the original safetensors)");
  }
  return t;
}

}  // namespace tpro

namespace tpro {

bool is_gguf_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

namespace {
void check_qk(int64_t rows, int64_t n_head) {
  if (n_head <= 0 || rows <= 0 || rows % (2 * n_head) != 0) {
    fail("cannot permute Q/K rows: ", rows, " rows do not split into ", n_head,
         " heads of an even size (hint: pass n_head for attn_q and n_head_kv for attn_k)");
  }
}
}  // namespace

int64_t permute_qk_source_row(int64_t r, int64_t rows, int64_t n_head) {
  const int64_t dh = rows / n_head, half = dh / 2;
  const int64_t h = r / dh, i = (r % dh) / 2, j = r % 2;
  return h * dh + j * half + i;
}

void permute_qk_rows(const void* src, void* dst, int64_t rows, size_t row_bytes, int64_t n_head) {
  check_qk(rows, n_head);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(d + size_t(r) * row_bytes, s + size_t(permute_qk_source_row(r, rows, n_head)) * row_bytes, row_bytes);
  }
}

void unpermute_qk_rows(const void* src, void* dst, int64_t rows, size_t row_bytes, int64_t n_head) {
  check_qk(rows, n_head);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(d + size_t(permute_qk_source_row(r, rows, n_head)) * row_bytes, s + size_t(r) * row_bytes, row_bytes);
  }
}

}  // namespace tpro
