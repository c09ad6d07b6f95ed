// GGUF value type names and the ggml type table (names, block sizes, bytes per block).
// Block sizes follow ggml's type_traits (ggml.c); Q8_1 is 36 bytes as ggml's struct, not the
// 40 listed in gguf-py. NVFP4 and Q1_0 are the newest ids; anything else is unknown.
#include "io/gguf_value.h"

#include "core/error.h"

namespace tpro {

namespace {

constexpr const char* kGgufTypeNames[kGgufTypeCount] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                        "bool", "string", "array", "u64", "i64", "f64"};
constexpr size_t kGgufTypeSizes[kGgufTypeCount] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

struct GgmlEntry {
  uint32_t id;
  GgmlTypeInfo info;
};

constexpr int64_t QK_K = 256;
constexpr GgmlEntry kGgmlTypes[] = {
    {0, {"F32", 1, 4}},
    {1, {"F16", 1, 2}},
    {2, {"Q4_0", 32, 2 + 16}},
    {3, {"Q4_1", 32, 2 + 2 + 16}},
    {6, {"Q5_0", 32, 2 + 4 + 16}},
    {7, {"Q5_1", 32, 2 + 2 + 4 + 16}},
    {8, {"Q8_0", 32, 2 + 32}},
    {9, {"Q8_1", 32, 2 + 2 + 32}},
    {10, {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4}},
    {11, {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12}},
    {12, {"Q4_K", QK_K, 2 + 2 + 12 + QK_K / 2}},
    {13, {"Q5_K", QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2}},
    {14, {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16}},
    {15, {"Q8_K", QK_K, 4 + QK_K + QK_K / 8}},
    {16, {"IQ2_XXS", QK_K, 2 + QK_K / 4}},
    {17, {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32}},
    {18, {"IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8}},
    {19, {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16}},
    {20, {"IQ4_NL", 32, 2 + 16}},
    {21, {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4}},
    {22, {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16}},
    {23, {"IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64}},
    {24, {"I8", 1, 1}},
    {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},
    {27, {"I64", 1, 8}},
    {28, {"F64", 1, 8}},
    {29, {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32}},
    {30, {"BF16", 1, 2}},
    {34, {"TQ1_0", QK_K, 2 + 4 * 13}},
    {35, {"TQ2_0", QK_K, 2 + 64}},
    {39, {"MXFP4", 32, 1 + 16}},
    {40, {"NVFP4", 64, 4 + 32}},
    {41, {"Q1_0", 128, 2 + 16}},
};

constexpr GgmlType kSupported[] = {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                                   GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K};

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  const auto i = uint32_t(t);
  return i < kGgufTypeCount ? kGgufTypeNames[i] : "unknown";
}

size_t gguf_type_size(GgufType t) {
  const auto i = uint32_t(t);
  return i < kGgufTypeCount ? kGgufTypeSizes[i] : 0;
}

size_t GgufArray::size() const {
  return std::visit([](const auto& v) { return v.size(); }, data);
}

std::string gguf_describe(const GgufArray& a) {
  if (a.elem_type() != GgufType::ARRAY) return cat("array of ", gguf_type_name(a.elem_type()));
  const auto& inner = std::get<std::vector<GgufArray>>(a.data);
  return inner.empty() ? std::string("array of array") : "array of " + gguf_describe(inner.front());
}

std::string gguf_describe(const GgufValue& v) {
  if (const auto* a = std::get_if<GgufArray>(&v.data)) return gguf_describe(*a);
  return std::string(gguf_type_name(v.type()));
}

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  for (const auto& e : kGgmlTypes)
    if (e.id == id) return &e.info;
  return nullptr;
}

std::string ggml_type_name(GgmlType t) {
  const GgmlTypeInfo* i = ggml_type_info(uint32_t(t));
  return i ? std::string(i->name) : cat("ggml type ", uint32_t(t));
}

size_t ggml_row_size(GgmlType t, int64_t ne0) {
  const GgmlTypeInfo* i = ggml_type_info(uint32_t(t));
  TPRO_CHECK(i != nullptr && ne0 % i->block == 0, "row of ", ne0, " elements of ", ggml_type_name(t));
  return size_t(ne0 / i->block) * i->type_size;
}

bool ggml_type_supported(GgmlType t) {
  for (GgmlType s : kSupported)
    if (s == t) return true;
  return false;
}

std::string ggml_supported_types() {
  std::string out;
  for (GgmlType s : kSupported) out += (out.empty() ? "" : ", ") + ggml_type_name(s);
  return out;
}

}  // namespace tpro
