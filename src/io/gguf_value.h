// GGUF metadata values (all 13 GGUF value types, arrays nested to any depth) and the ggml
// tensor types a GGUF file may name. A value's variant index equals its GGUF type id, so the
// type on disk is never ambiguous: the constructors only take the exact C++ types below.
// Reference: ggml docs/gguf.md (gguf_metadata_value_type, ggml_type) and gguf-py constants.py.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace tpro {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
constexpr uint32_t kGgufTypeCount = 13;
std::string_view gguf_type_name(GgufType t);  // "u8", "f32", "bool", "string", "array", ...
size_t gguf_type_size(GgufType t);            // bytes of a scalar on disk; 0 for string/array

struct GgufArray {
  // Alternative i holds elements of GgufType i (9: nested arrays).
  using Data = std::variant<std::vector<uint8_t>, std::vector<int8_t>, std::vector<uint16_t>, std::vector<int16_t>,
                            std::vector<uint32_t>, std::vector<int32_t>, std::vector<float>, std::vector<bool>,
                            std::vector<std::string>, std::vector<GgufArray>, std::vector<uint64_t>,
                            std::vector<int64_t>, std::vector<double>>;
  Data data;

  GgufArray() = default;
  template <typename T>
  GgufArray(std::vector<T> v) : data(std::in_place_type<std::vector<T>>, std::move(v)) {}
  GgufType elem_type() const { return GgufType(data.index()); }
  size_t size() const;
  bool operator==(const GgufArray& o) const;
};

struct GgufValue {
  using Data = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string, GgufArray,
                            uint64_t, int64_t, double>;
  Data data;

  template <typename T>
  static constexpr bool kHolds = []<typename... Ts>(std::variant<Ts...>*) {
    return (std::is_same_v<T, Ts> || ...);
  }(static_cast<Data*>(nullptr));

  GgufValue() = default;
  template <typename T>
    requires kHolds<T>
  GgufValue(T v) : data(std::in_place_type<T>, std::move(v)) {}
  GgufValue(const char* s) : data(std::in_place_type<std::string>, s) {}
  GgufValue(std::string_view s) : data(std::in_place_type<std::string>, s) {}
  template <typename T>
  GgufValue(std::vector<T> v) : data(std::in_place_type<GgufArray>, std::move(v)) {}

  GgufType type() const { return GgufType(data.index()); }
  bool operator==(const GgufValue& o) const { return data == o.data; }
};

inline bool GgufArray::operator==(const GgufArray& o) const { return data == o.data; }

// The GGUF type of a C++ scalar/string type (as stored in GgufValue).
template <typename T>
constexpr GgufType gguf_type_of() {
  static_assert(GgufValue::kHolds<T>, "not a GGUF value type");
  return []<typename... Ts>(std::variant<Ts...>*) {
    uint32_t i = 0, found = 0;
    ((std::is_same_v<T, Ts> ? (found = i, ++i) : ++i), ...);
    return GgufType(found);
  }(static_cast<GgufValue::Data*>(nullptr));
}

// "u32", "string", "array of string", "array of array of i32", ...
std::string gguf_describe(const GgufValue& v);
std::string gguf_describe(const GgufArray& a);

// ggml tensor types by GGUF id. Ids 4, 5 and 31-33, 36-38 were removed from ggml.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41,
};

struct GgmlTypeInfo {
  const char* name;   // "Q4_K"
  int64_t block;      // elements per block
  size_t type_size;   // bytes per block
};
const GgmlTypeInfo* ggml_type_info(uint32_t id);  // null for an id ggml does not define
std::string ggml_type_name(GgmlType t);           // "Q4_K", or "ggml type 99" when unknown
// Bytes of a row of ne0 elements (ne0 must be a multiple of the block).
size_t ggml_row_size(GgmlType t, int64_t ne0);
// The types tpro can compute with (quant/ decodes them): F32 F16 BF16 Q8_0 Q4_0 Q4_K Q6_K.
bool ggml_type_supported(GgmlType t);
std::string ggml_supported_types();  // "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K"

}  // namespace tpro
