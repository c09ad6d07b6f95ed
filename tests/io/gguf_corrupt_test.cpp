// io/gguf: a corpus of hand-made corrupt GGUF files, each asserting its exact error message
// (what is wrong, where: path and byte offset). Layout reminders: the header is 24 bytes
// (magic, version, n_tensors, n_kv); a string is a u64 length + bytes; a tensor info with a
// one-letter name and one dimension is 33 bytes (9 name, 4 n_dims, 8 ne, 4 type, 8 offset).
#include <gtest/gtest.h>

#include "io/gguf.h"
#include "io/gguf_test_util.h"

using namespace tpro;
using namespace tpro::test;

namespace {

constexpr uint32_t kArray = 9, kU32 = 4, kU64 = 10, kBool = 7;
constexpr uint32_t kF32 = 0, kQ4K = 12;

struct Case {
  const char* name;
  Bytes bytes;
  std::string message;  // after "GGUF <path>"
};

void expect_errors(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const fs::path p = write_temp(std::string(c.name) + ".gguf", c.bytes.b);
    EXPECT_EQ(open_error(p), "GGUF " + p.string() + c.message) << c.name;
  }
}

Bytes zeros(Bytes b, size_t n) {
  b.b.append(n, '\0');
  return b;
}

}  // namespace

TEST(GgufCorrupt, Header) {
  expect_errors({
      {"truncated_magic", Bytes().raw("GG"), " at byte 0: truncated file: the magic needs 4 bytes but only 2 remain"},
      {"truncated_header", Bytes().raw("GGUF").u32(3).u32(0),
       " at byte 8: truncated file: the tensor count needs 8 bytes but only 4 remain"},
      {"bad_magic", zeros(Bytes().raw("GGML"), 20),
       " at byte 0: not a GGUF file: magic is 'GGML' (47 47 4d 4c), expected 'GGUF'"},
      {"bad_version", Bytes().header(0, 0, 4),
       " at byte 4: unsupported GGUF version 4 (expected 2 or 3) (hint: the file may come from a newer llama.cpp than "
       "tpro knows)"},
      {"version_1", Bytes().header(0, 0, 1),
       " at byte 4: unsupported GGUF version 1 (expected 2 or 3) (hint: GGUF v1 is obsolete; re-convert the model with a "
       "current llama.cpp)"},
      {"big_endian", Bytes().header(0, 0, 0x03000000),
       " at byte 4: unsupported GGUF version 50331648 (expected 2 or 3) (hint: this looks like a big-endian GGUF file)"},
      {"huge_n_tensors", zeros(Bytes().header(uint64_t(1) << 60, 0), 100),
       " at byte 8: tensor count 1152921504606846976 cannot fit in the file (a tensor info takes at least 32 bytes and "
       "100 remain)"},
      {"huge_n_kv", zeros(Bytes().header(0, uint64_t(1) << 62), 20),
       " at byte 16: metadata count 4611686018427387904 cannot fit in the file (an entry takes at least 13 bytes and 20 "
       "remain)"},
  });
}

TEST(GgufCorrupt, Metadata) {
  Bytes deep = Bytes().header(0, 1).str("deep").u32(kArray);
  for (int level = 0; level < 10; ++level) deep.u32(kArray).u64(1);  // each level starts 12 bytes after the last
  deep.u32(kU32).u64(0);
  expect_errors({
      {"string_past_eof", Bytes().header(0, 1).u64(1000).raw("abcdefghij"),
       " at byte 24: string length 1000 of the key of metadata entry 0 runs past the end of the file (10 bytes remain)"},
      {"array_count_overflow", zeros(Bytes().header(0, 1).str("a").u32(kArray).u32(kU32).u64(uint64_t(1) << 62), 16),
       " at byte 37: array 'a' claims 4611686018427387904 u32 elements but only 16 bytes remain"},
      {"string_array_past_eof", zeros(Bytes().header(0, 1).str("v").u32(kArray).u32(8).u64(3), 16),
       " at byte 37: array 'v' claims 3 string elements but only 16 bytes remain"},
      {"unknown_value_type", zeros(Bytes().header(0, 1).str("k").u32(13), 8),
       " at byte 33: metadata 'k' has unknown value type 13"},
      {"bad_bool", zeros(Bytes().header(0, 1).str("k").u32(kBool).raw("\x02"), 4),
       " at byte 37: metadata 'k' has bool value 2 (expected 0 or 1)"},
      {"nested_too_deep", deep, " at byte 136: metadata 'deep' nests arrays more than 8 deep"},
      {"duplicate_key", Bytes().header(0, 2).str("k").u32(kU32).u32(1).str("k").u32(kU32).u32(2),
       " at byte 41: duplicate metadata key 'k'"},
      {"alignment_not_power_of_two", Bytes().header(0, 1).str("general.alignment").u32(kU32).u32(48),
       " at byte 24: general.alignment is 48, not a power of two"},
      {"alignment_wrong_type", Bytes().header(0, 1).str("general.alignment").u32(kU64).u64(32),
       " at byte 24: metadata 'general.alignment' is u64, expected u32"},
      {"truncated_value", Bytes().header(0, 1).str("k").u32(kU64).u32(7),
       " at byte 37: truncated file: the value of 'k' needs 8 bytes but only 4 remain"},
  });
}

TEST(GgufCorrupt, TensorInfos) {
  expect_errors({
      {"ne_product_overflow", Bytes().header(1, 0).tensor("w", {int64_t(1) << 32, int64_t(1) << 32}, kF32, 0),
       " at byte 33: tensor 'w' shape (4294967296, 4294967296) has more than 2^63 - 1 elements"},
      {"byte_size_overflow", Bytes().header(1, 0).tensor("w", {int64_t(1) << 31, int64_t(1) << 31}, kF32, 0),
       " at byte 33: tensor 'w' shape (2147483648, 2147483648) of type F32 overflows a byte size"},
      {"negative_dimension", Bytes().header(1, 0).tensor("w", {4, -2}, kF32, 0),
       " at byte 45: tensor 'w' dimension 1 is negative (-2)"},
      {"too_many_dimensions", Bytes().header(1, 0).tensor("w", {1, 1, 1, 1, 1}, kF32, 0),
       " at byte 33: tensor 'w' has 5 dimensions (expected 1 to 4)"},
      {"unknown_type", Bytes().header(1, 0).tensor("w", {4}, 99, 0),
       " at byte 45: tensor 'w' has unknown ggml type 99 (hint: the file may come from a newer llama.cpp than tpro "
       "knows)"},
      {"removed_type", Bytes().header(1, 0).tensor("w", {32}, 4, 0),
       " at byte 45: tensor 'w' has unknown ggml type 4 (hint: the file may come from a newer llama.cpp than tpro "
       "knows)"},
      {"partial_block", Bytes().header(1, 0).tensor("w", {100}, kQ4K, 0),
       " at byte 45: tensor 'w' of type Q4_K has 100 elements per row, not a multiple of its block size 256"},
      {"misaligned_offset", Bytes().header(1, 0).tensor("w", {4}, kF32, 17),
       " at byte 49: tensor 'w' data offset 17 is not a multiple of the alignment 32"},
      {"empty_name", Bytes().header(1, 0).tensor("", {4}, kF32, 0), " at byte 24: tensor 0 has an empty name"},
      {"duplicate_tensor_name", zeros(Bytes().header(2, 0).tensor("w", {4}, kF32, 0).tensor("w", {4}, kF32, 32).pad(32), 64),
       " at byte 57: duplicate tensor name 'w' (tensors 0 and 1)"},
  });
}

TEST(GgufCorrupt, TensorData) {
  expect_errors({
      {"offset_past_eof", zeros(Bytes().header(1, 0).tensor("w", {4}, kF32, 1024).pad(32), 16),
       " at byte 49: tensor 'w' needs 16 bytes at data offset 1024 but the data section (from byte 64) holds only 16 "
       "bytes (hint: the file is truncated)"},
      {"truncated_data", zeros(Bytes().header(1, 0).tensor("w", {8}, kF32, 0).pad(32), 16),
       " at byte 49: tensor 'w' needs 32 bytes at data offset 0 but the data section (from byte 64) holds only 16 bytes "
       "(hint: the file is truncated)"},
      {"no_data_section", Bytes().header(1, 0).tensor("w", {8}, kF32, 0),
       " at byte 49: tensor 'w' needs 32 bytes at data offset 0 but the data section (from byte 64) holds only 0 bytes "
       "(hint: the file is truncated)"},
      {"overlapping_tensors", zeros(Bytes().header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {4}, kF32, 32).pad(32), 64),
       " at byte 82: tensors 'a' (data offset 0, 64 bytes) and 'b' (data offset 32) overlap"},
  });
}

TEST(GgufCorrupt, ValidMinimalFilesOpen) {
  // Controls for the corpus: the same shapes, well formed, open without error.
  const fs::path empty = write_temp("empty.gguf", Bytes().header(0, 0).b);
  EXPECT_EQ(open_error(empty), "");
  const fs::path one = write_temp("one.gguf", zeros(Bytes().header(1, 0).tensor("w", {4}, kF32, 0).pad(32), 32).b);
  EXPECT_EQ(open_error(one), "");
  GgufFile f(one);
  EXPECT_EQ(f.data_offset(), 64u);
  EXPECT_EQ(f.tensor("w").nbytes, 16u);
}
