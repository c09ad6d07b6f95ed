// GGUF v3 serialization (see gguf_writer.h): header and tensor infos are built in memory,
// tensor data is streamed after it, each tensor padded with zeros to the alignment (the last
// one too: ggml reads the padded data section in one piece).
#include "io/gguf_writer.h"

#include <cstring>

#include "core/error.h"
#include "core/tensor.h"

namespace tpro {

namespace {

constexpr size_t kMaxNameBytes = 63;  // GGML_MAX_NAME is 64 including the terminating NUL
constexpr int kMaxArrayDepth = 8;     // as the reader

size_t pad_to(size_t n, size_t align) { return (n + align - 1) / align * align; }

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_string(std::string& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.append(s);
}

void put_array(std::string& out, const GgufArray& a) {
  put<uint32_t>(out, uint32_t(a.elem_type()));
  put<uint64_t>(out, a.size());
  std::visit(
      [&](const auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_same_v<T, bool>) {
          for (bool b : v) put<uint8_t>(out, b ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::string>) {
          for (const auto& s : v) put_string(out, s);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          for (const auto& inner : v) put_array(out, inner);
        } else {
          out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
        }
      },
      a.data);
}

void put_value(std::string& out, const GgufValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          put<uint8_t>(out, x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::string>) {
          put_string(out, x);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          put_array(out, x);
        } else {
          put<T>(out, x);
        }
      },
      v.data);
}

int array_depth(const GgufArray& a) {
  int d = 1;
  if (const auto* inner = std::get_if<std::vector<GgufArray>>(&a.data)) {
    for (const auto& i : *inner) d = std::max(d, 1 + array_depth(i));
  }
  return d;
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  if (key.empty() || key.size() > 65535) fail("cannot write GGUF metadata key of ", key.size(), " bytes (expected 1 to 65535)");
  if (key == "general.alignment") {
    const uint32_t* a = std::get_if<uint32_t>(&value.data);
    if (!a) fail("cannot write GGUF: general.alignment must be u32, got ", gguf_describe(value));
    if (*a == 0 || (*a & (*a - 1)) != 0) fail("cannot write GGUF: general.alignment ", *a, " is not a power of two");
  }
  if (const auto* arr = std::get_if<GgufArray>(&value.data); arr && array_depth(*arr) > kMaxArrayDepth) {
    fail("cannot write GGUF metadata '", key, "': arrays nest more than ", kMaxArrayDepth, " deep");
  }
  for (auto& kv : kv_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kv_.push_back({std::move(key), std::move(value)});
}

const GgufValue* GgufWriter::find(std::string_view key) const {
  for (const auto& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

void GgufWriter::check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                              size_t nbytes) const {
  const std::string what = cat("cannot write GGUF tensor '", name, "': ");
  if (name.empty() || name.size() > kMaxNameBytes) {
    fail(what, "name is ", name.size(), " bytes (llama.cpp allows 1 to ", kMaxNameBytes, ")");
  }
  for (const auto& t : tensors_)
    if (t.name == name) fail(what, "duplicate name");
  if (ne.empty() || ne.size() > 4) fail(what, ne.size(), " dimensions (expected 1 to 4)");
  for (int64_t d : ne)
    if (d < 0) fail(what, "negative dimension in ", shape_str(ne));
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  if (!info) fail(what, "unknown ggml type ", uint32_t(type));
  if (ne[0] % info->block != 0) {
    fail(what, "rows of ", ne[0], " elements are not whole ", info->name, " blocks of ", info->block);
  }
  uint64_t want = uint64_t(ne[0] / info->block) * info->type_size;
  for (size_t j = 1; j < ne.size(); ++j) {
    if (__builtin_mul_overflow(want, uint64_t(ne[j]), &want)) fail(what, "shape ", shape_str(ne), " is too large");
  }
  if (want != nbytes) fail(what, "shape ", shape_str(ne), " of type ", info->name, " needs ", want, " bytes, got ", nbytes);
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, const void* data, size_t nbytes) {
  check_tensor(name, type, ne, nbytes);
  if (data == nullptr && nbytes > 0) fail("cannot write GGUF tensor '", name, "': no data");
  tensors_.push_back({std::move(name), type, std::move(ne), static_cast<const uint8_t*>(data), {}, nbytes});
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes) {
  check_tensor(name, type, ne, bytes.size());
  const size_t n = bytes.size();
  tensors_.push_back({std::move(name), type, std::move(ne), nullptr, std::move(bytes), n});
}

uint32_t GgufWriter::alignment() const {
  const GgufValue* a = find("general.alignment");
  return a ? std::get<uint32_t>(a->data) : kGgufDefaultAlignment;
}

std::string GgufWriter::header() const {
  const size_t align = alignment();
  std::string out;
  out.append("GGUF", 4);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_.size());
  for (const auto& kv : kv_) {
    put_string(out, kv.key);
    put<uint32_t>(out, uint32_t(kv.value.type()));
    put_value(out, kv.value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, uint32_t(t.ne.size()));
    for (int64_t d : t.ne) put<int64_t>(out, d);
    put<uint32_t>(out, uint32_t(t.type));
    put<uint64_t>(out, offset);
    offset += pad_to(t.nbytes, align);
  }
  out.resize(pad_to(out.size(), align), '\0');
  return out;
}

size_t GgufWriter::file_size() const {
  size_t n = header().size();
  for (const auto& t : tensors_) n += pad_to(t.nbytes, alignment());
  return n;
}

void GgufWriter::write(const fs::path& path) const {
  const size_t align = alignment();
  const std::vector<char> zeros(align, 0);
  AtomicFileWriter w(path);
  const std::string h = header();
  w.write(h.data(), h.size());
  for (const auto& t : tensors_) {
    w.write(t.bytes(), t.nbytes);
    w.write(zeros.data(), pad_to(t.nbytes, align) - t.nbytes);
  }
  w.commit();
}

std::string GgufWriter::to_bytes() const {
  const size_t align = alignment();
  std::string out = header();
  for (const auto& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.bytes()), t.nbytes);
    out.resize(pad_to(out.size(), align), '\0');
  }
  return out;
}

}  // namespace tpro
