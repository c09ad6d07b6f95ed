// io/gguf: write -> read round trip of every metadata type (nested arrays included) and of
// tensors of several types; layout facts llama.cpp relies on (alignment, padding, offsets);
// typed getters and their errors; and the Llama Q/K row permutation.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <random>

#include "common/test_util.h"
#include "io/gguf.h"
#include "io/gguf_test_util.h"
#include "io/gguf_writer.h"

using namespace tpro;
using namespace tpro::test;

namespace {

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

// One key of every GGUF type, arrays of every element type, nested and empty arrays.
void set_all_types(GgufWriter& w) {
  w.set("general.architecture", "llama");
  w.set("t.u8", uint8_t(200));
  w.set("t.i8", int8_t(-100));
  w.set("t.u16", uint16_t(60000));
  w.set("t.i16", int16_t(-30000));
  w.set("t.u32", uint32_t(4000000000u));
  w.set("t.i32", int32_t(-2000000000));
  w.set("t.f32", 3.25f);
  w.set("t.bool", true);
  w.set("t.string", std::string("h\xC3\xA9llo, \xE4\xB8\x96\xE7\x95\x8C"));  // UTF-8
  w.set("t.empty_string", std::string());
  w.set("t.u64", uint64_t(18000000000000000000ull));
  w.set("t.i64", int64_t(-9000000000000000000ll));
  w.set("t.f64", -1.0e300);
  w.set("a.u8", std::vector<uint8_t>{1, 2, 255});
  w.set("a.i8", std::vector<int8_t>{-1, 0, 127});
  w.set("a.u16", std::vector<uint16_t>{65535});
  w.set("a.i16", std::vector<int16_t>{-5, 5});
  w.set("a.u32", std::vector<uint32_t>{1, 2, 3});
  w.set("a.i32", std::vector<int32_t>{-7});
  w.set("a.f32", std::vector<float>{0.5f, -1e-20f, 3e38f});
  w.set("a.bool", std::vector<bool>{true, false, true});
  w.set("a.string", std::vector<std::string>{"<s>", "", "\xE2\x96\x81the"});
  w.set("a.u64", std::vector<uint64_t>{0, ~0ull});
  w.set("a.i64", std::vector<int64_t>{-1});
  w.set("a.f64", std::vector<double>{1e-300});
  w.set("a.empty", std::vector<float>{});
  w.set("a.nested", std::vector<GgufArray>{GgufArray(std::vector<std::string>{"a", "b"}),
                                           GgufArray(std::vector<std::string>{}),
                                           GgufArray(std::vector<std::string>{"c"})});
  w.set("a.deep", std::vector<GgufArray>{GgufArray(std::vector<GgufArray>{GgufArray(std::vector<int32_t>{1, 2})})});
}

}  // namespace

TEST(Gguf, RoundTripPreservesMetadataAndTensorBytes) {
  GgufWriter w;
  set_all_types(w);
  w.set("general.alignment", uint32_t(64));
  const auto f32 = random_bytes(4 * 7 * 3, 1), f16 = random_bytes(2 * 5, 2), bf16 = random_bytes(2 * 64 * 2, 3);
  const auto q8 = random_bytes(34 * 2 * 3, 4), q4k = random_bytes(144 * 2, 5), q6k = random_bytes(210, 6);
  w.add_tensor("blk.0.attn_q.weight", GgmlType::F32, {7, 3}, f32.data(), f32.size());
  w.add_tensor("f16.vec", GgmlType::F16, {5}, f16.data(), f16.size());
  w.add_tensor("bf16.3d", GgmlType::BF16, {64, 1, 2}, bf16);  // owned copy
  w.add_tensor("q8_0", GgmlType::Q8_0, {64, 3}, q8.data(), q8.size());
  w.add_tensor("q4_k", GgmlType::Q4_K, {512, 1}, q4k.data(), q4k.size());
  w.add_tensor("q6_k", GgmlType::Q6_K, {256}, q6k.data(), q6k.size());
  w.add_tensor("empty", GgmlType::F32, {0, 4}, nullptr, 0);
  const fs::path p = temp_dir() / "all.gguf";
  w.write(p);
  EXPECT_EQ(fs::file_size(p), w.file_size());
  EXPECT_EQ(read_file(p), w.to_bytes());

  GgufFile f(p);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.metadata().size(), w.metadata().size());
  for (size_t i = 0; i < w.metadata().size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, w.metadata()[i].key);
    EXPECT_TRUE(f.metadata()[i].value == w.metadata()[i].value) << w.metadata()[i].key;
  }
  struct Want {
    const char* name;
    GgmlType type;
    std::vector<int64_t> ne;
    const std::vector<uint8_t>* bytes;
  };
  const std::vector<uint8_t> none;
  const Want want[] = {{"blk.0.attn_q.weight", GgmlType::F32, {7, 3}, &f32}, {"f16.vec", GgmlType::F16, {5}, &f16},
                       {"bf16.3d", GgmlType::BF16, {64, 1, 2}, &bf16},     {"q8_0", GgmlType::Q8_0, {64, 3}, &q8},
                       {"q4_k", GgmlType::Q4_K, {512, 1}, &q4k},           {"q6_k", GgmlType::Q6_K, {256}, &q6k},
                       {"empty", GgmlType::F32, {0, 4}, &none}};
  ASSERT_EQ(f.tensors().size(), std::size(want));
  uint64_t expect_offset = 0;
  for (const auto& t : want) {
    const GgufTensor& g = f.tensor(t.name);
    EXPECT_EQ(g.type, t.type) << t.name;
    EXPECT_EQ(g.ne, t.ne) << t.name;
    ASSERT_EQ(g.nbytes, t.bytes->size()) << t.name;
    EXPECT_EQ(std::memcmp(g.data, t.bytes->data(), g.nbytes), 0) << t.name;
    EXPECT_EQ(g.offset, expect_offset) << t.name << ": ggml requires tensors packed in order, padded to 64";
    expect_offset += (g.nbytes + 63) / 64 * 64;
  }
  EXPECT_EQ(fs::file_size(p), f.data_offset() + expect_offset) << "the last tensor is padded too";
  EXPECT_EQ(f.tensor("bf16.3d").rows(), 2);
  EXPECT_EQ(f.tensor("bf16.3d").cols(), 64);
  EXPECT_EQ(f.tensor("q8_0").numel(), 192);
}

TEST(Gguf, ReadsVersion2AndDefaultAlignment) {
  GgufWriter w;
  w.set("general.name", "tiny");
  const auto d = random_bytes(4 * 3, 9);
  w.add_tensor("x", GgmlType::F32, {3}, d.data(), d.size());
  std::string bytes = w.to_bytes();
  bytes[4] = 2;  // v2 has the same little-endian layout as v3
  const fs::path p = write_temp("v2.gguf", bytes);
  GgufFile f(p);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(f.get_string("general.name"), "tiny");
  EXPECT_EQ(std::memcmp(f.tensor("x").data, d.data(), 12), 0);
}

TEST(Gguf, TypedGettersNameKeyAndTypes) {
  GgufWriter w;
  set_all_types(w);
  const fs::path p = temp_dir() / "m.gguf";
  w.write(p);
  GgufFile f(p);
  const std::string P = "GGUF " + p.string();
  EXPECT_EQ(f.get_u8("t.u8"), 200);
  EXPECT_EQ(f.get_i16("t.i16"), -30000);
  EXPECT_EQ(f.get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(f.get_f32("t.f32"), 3.25f);
  EXPECT_EQ(f.get_f64("t.f64"), -1.0e300);
  EXPECT_TRUE(f.get_bool("t.bool"));
  EXPECT_EQ(f.get_i64("t.i64"), -9000000000000000000ll);
  EXPECT_EQ(f.get_array<std::string>("a.string")[2], "\xE2\x96\x81the");
  EXPECT_EQ(f.get_array<bool>("a.bool"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.get_array<GgufArray>("a.nested").size(), 3u);
  EXPECT_EQ(f.get_int("t.u32"), 4000000000ll);
  EXPECT_EQ(f.get_int("t.i8"), -100);
  EXPECT_EQ(f.get_or<uint32_t>("llama.missing", 7u), 7u);
  EXPECT_EQ(f.get_or<uint32_t>("t.u32", 7u), 4000000000u);
  EXPECT_EQ(error_of([&] { f.get_u32("llama.block_count"); }), P + ": missing metadata key 'llama.block_count'");
  const std::string e1 = error_of([&] { f.get_u32("t.u64"); });
  EXPECT_TRUE(e1.starts_with(P + " at byte ")) << e1;
  EXPECT_TRUE(e1.ends_with(": metadata 't.u64' is u64, expected u32")) << e1;
  EXPECT_TRUE(error_of([&] { f.get_array<std::string>("a.i32"); }).ends_with(": metadata 'a.i32' is array of i32, expected array of string"));
  EXPECT_TRUE(error_of([&] { f.get_string("a.nested"); }).ends_with(": metadata 'a.nested' is array of array of string, expected string"));
  EXPECT_TRUE(error_of([&] { f.get_array<float>("t.f32"); }).ends_with(": metadata 't.f32' is f32, expected array of f32"));
  EXPECT_TRUE(error_of([&] { f.get_int("t.f64"); }).ends_with(": metadata 't.f64' is f64, expected an integer"));
  EXPECT_EQ(error_of([&] { f.get_int("t.u64"); }), P + ": metadata 't.u64' value 18000000000000000000 does not fit in int64");
  EXPECT_EQ(error_of([&] { f.tensor("output.weight"); }), P + ": no tensor named 'output.weight'");
}

TEST(Gguf, UnsupportedTensorTypeNamesTensorAndType) {
  GgufWriter w;
  const auto q5k = random_bytes(176, 3), q8 = random_bytes(34, 4);
  w.add_tensor("blk.0.ffn_down.weight", GgmlType::Q5_K, {256}, q5k.data(), q5k.size());
  w.add_tensor("blk.0.ffn_up.weight", GgmlType::Q8_0, {32}, q8.data(), q8.size());
  const fs::path p = temp_dir() / "q5k.gguf";
  w.write(p);
  GgufFile f(p);  // known types open fine, whether or not tpro computes with them
  EXPECT_EQ(f.supported_tensor("blk.0.ffn_up.weight").type, GgmlType::Q8_0);
  EXPECT_EQ(error_of([&] { f.supported_tensor("blk.0.ffn_down.weight"); }),
            "GGUF " + p.string() +
                ": tensor 'blk.0.ffn_down.weight' has type Q5_K, which tpro cannot compute with (supported: F32, F16, "
                "BF16, Q8_0, Q4_0, Q4_K, Q6_K) (hint: requantize the model to one of those with llama-quantize, or "
                "load the original safetensors)");
}

TEST(Gguf, WriterRejectsBadInput) {
  GgufWriter w;
  const std::vector<uint8_t> b(64);
  EXPECT_EQ(error_of([&] { w.set("general.alignment", uint64_t(32)); }),
            "cannot write GGUF: general.alignment must be u32, got u64");
  EXPECT_EQ(error_of([&] { w.set("general.alignment", uint32_t(48)); }),
            "cannot write GGUF: general.alignment 48 is not a power of two");
  EXPECT_EQ(error_of([&] { w.add_tensor(std::string(64, 'n'), GgmlType::F32, {16}, b.data(), 64); }),
            "cannot write GGUF tensor '" + std::string(64, 'n') + "': name is 64 bytes (llama.cpp allows 1 to 63)");
  EXPECT_EQ(error_of([&] { w.add_tensor("q", GgmlType::Q4_K, {100}, b.data(), 64); }),
            "cannot write GGUF tensor 'q': rows of 100 elements are not whole Q4_K blocks of 256");
  EXPECT_EQ(error_of([&] { w.add_tensor("x", GgmlType::F32, {4, 5}, b.data(), 64); }),
            "cannot write GGUF tensor 'x': shape (4, 5) of type F32 needs 80 bytes, got 64");
  w.add_tensor("x", GgmlType::F32, {16}, b.data(), 64);
  EXPECT_EQ(error_of([&] { w.add_tensor("x", GgmlType::F32, {16}, b.data(), 64); }),
            "cannot write GGUF tensor 'x': duplicate name");
  EXPECT_EQ(error_of([&] { w.add_tensor("y", GgmlType(4), {16}, b.data(), 64); }),
            "cannot write GGUF tensor 'y': unknown ggml type 4");
}

TEST(Gguf, SetReplacesKeyInPlace) {
  GgufWriter w;
  w.set("a", uint32_t(1));
  w.set("b", uint32_t(2));
  w.set("a", std::string("x"));
  ASSERT_EQ(w.metadata().size(), 2u);
  EXPECT_EQ(w.metadata()[0].key, "a");
  EXPECT_EQ(std::get<std::string>(w.metadata()[0].value.data), "x");
}

TEST(QkPermute, HandCheckedSmallCase) {
  // 2 heads of 4 rows: per head HF rows (0 1 | 2 3) pair 0-2 and 1-3; llama.cpp wants the
  // pairs adjacent: 0 2 1 3. With n_head = 2 and 8 rows of one float each:
  const float hf[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  float gguf[8], back[8];
  permute_qk_rows(hf, gguf, 8, sizeof(float), 2);
  const float want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(gguf[i], want[i]) << i;
  unpermute_qk_rows(gguf, back, 8, sizeof(float), 2);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(back[i], hf[i]) << i;
  // One head of 8 (Dh/2 = 4): 0 4 1 5 2 6 3 7.
  permute_qk_rows(hf, gguf, 8, sizeof(float), 1);
  const float want1[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(gguf[i], want1[i]) << i;
  // attn_k of a GQA model: 16 rows, n_head_kv = 2 (convert_hf_to_gguf passes n_head_kv as the
  // head count). Values checked against the converter's torch reshape/swapaxes.
  float k[16], kg[16];
  std::iota(k, k + 16, 0.0f);
  permute_qk_rows(k, kg, 16, sizeof(float), 2);
  const float want_k[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(kg[i], want_k[i]) << i;
}

TEST(QkPermute, InverseUndoesForwardOnWholeRows) {
  for (int64_t n_head : {1, 2, 4, 8}) {
    const int64_t rows = 64, row_bytes = 12;  // e.g. 3 f32 columns, or any quantized row
    const auto src = random_bytes(size_t(rows * row_bytes), uint32_t(n_head));
    std::vector<uint8_t> mid(src.size()), back(src.size());
    permute_qk_rows(src.data(), mid.data(), rows, row_bytes, n_head);
    unpermute_qk_rows(mid.data(), back.data(), rows, row_bytes, n_head);
    EXPECT_EQ(back, src) << n_head;
    EXPECT_NE(mid, src) << n_head << ": the permutation must move rows";
    for (int64_t r = 0; r < rows; ++r) {  // rows move whole
      const int64_t s = permute_qk_source_row(r, rows, n_head);
      EXPECT_EQ(std::memcmp(mid.data() + r * row_bytes, src.data() + s * row_bytes, row_bytes), 0);
    }
  }
}

TEST(QkPermute, RejectsRowsThatDoNotSplitIntoEvenHeads) {
  float x[12] = {}, y[12];
  EXPECT_EQ(error_of([&] { permute_qk_rows(x, y, 12, sizeof(float), 4); }),  // heads of 3 rows: odd
            "cannot permute Q/K rows: 12 rows do not split into 4 heads of an even size (hint: pass n_head for "
            "attn_q and n_head_kv for attn_k)");
}
