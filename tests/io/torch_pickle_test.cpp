// io/torch_pickle: torch.save files written by python3-torch (tests/io/gen_torch_fixtures.py)
// read to the same values as their f32 safetensors twins, and every refusal a hostile or broken
// file meets, by its message: globals outside the allowlist (os.system), huge sizes, truncation
// at every length, unknown opcodes, bad CRCs, non-contiguous tensors, the legacy format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/crc32.h"
#include "io/safetensors.h"
#include "io/torch_pickle.h"
#include "io/torch_zip_util.h"
#include "io/zip_stored.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

const fs::path kDir = fs::path(TPRO_FIXTURES) / "torch";

std::vector<float> f32_of(const TensorView& t) {
  std::vector<float> v(size_t(t.numel()));
  to_f32(v.data(), t.data, t.dtype, v.size());
  return v;
}

void expect_same_tensors(const TorchFile& pt, const SafeTensorsFile& st) {
  std::vector<std::string> a = pt.names(), b = st.names();
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, b);
  for (const auto& name : b) {
    SCOPED_TRACE(name);
    const TensorView x = pt.view(name), y = st.view(name);
    EXPECT_EQ(x.shape, y.shape);
    EXPECT_EQ(f32_of(x), f32_of(y));  // exact: f16/bf16 widen to f32 without rounding
  }
}

// A valid one-tensor archive: "w" (2, 3) f32 over a storage of 6 elements.
const std::vector<float> kW = {1, -2, 3.5f, 0, 1e-3f, -7};
std::string one_tensor_pickle() { return pk::dict({{"w", pk::tensor("0", 6, 0, {2, 3}, {3, 1})}}); }
std::string with_pickle(const std::string& pkl) { return torch_zip(pkl, {{"0", f32_bytes(kW)}}); }

std::string error_for_pickle(const std::string& pkl) {
  return error_of([&] { TorchFile::from_bytes(with_pickle(pkl), "t.bin"); });
}

}  // namespace

TEST(Crc32, KnownCheckValues) {
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32_update(crc32("1234", 4), "56789", 5), 0xCBF43926u);
}

TEST(TorchFile, ReadsWhatTorchSaveWrites) {
  for (const char* name : {"mixed.bin", "mixed_protocol4.bin"}) {
    SCOPED_TRACE(name);
    const TorchFile pt(kDir / name);
    expect_same_tensors(pt, SafeTensorsFile(kDir / "mixed_expected.safetensors"));
    EXPECT_EQ(pt.view("half").dtype, DType::F16);
    EXPECT_EQ(pt.view("bf16").dtype, DType::BF16);
    EXPECT_EQ(pt.view("b").shape, (std::vector<int64_t>{2, 1, 4}));
    EXPECT_EQ(pt.view("scalar").shape, std::vector<int64_t>{});
    // "a" and "b" are views of one storage: "b" starts 12 elements after "a".
    EXPECT_EQ(static_cast<float*>(pt.view("b").data) - static_cast<float*>(pt.view("a").data), 12);
  }
  for (const char* name : {"peft_f16", "peft_bf16"}) {
    SCOPED_TRACE(name);
    expect_same_tensors(TorchFile(kDir / name / "adapter_model.bin"),
                        SafeTensorsFile(kDir / (std::string(name) + "_expected.safetensors")));
  }
}

TEST(TorchFile, ReadsHandMadeArchivesZip64Included) {
  for (bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64);
    const TorchFile f = TorchFile::from_bytes(torch_zip(one_tensor_pickle(), {{"0", f32_bytes(kW)}}, zip64), "t.bin");
    EXPECT_EQ(f.names(), std::vector<std::string>{"w"});
    EXPECT_EQ(f32_of(f.view("w")), kW);
    EXPECT_ERROR_HAS(f.view("v"), "t.bin: no tensor named v");
  }
  // A zip64 end record without its locator.
  std::string z = torch_zip(one_tensor_pickle(), {{"0", f32_bytes(kW)}}, true);
  z[z.size() - 22 - 20] = 'x';
  EXPECT_ERROR_HAS(TorchFile::from_bytes(z, "t.bin"), "t.bin: zip end record says zip64 but there is no zip64 locator");
}

TEST(TorchFile, RefusesGlobalsOutsideTheAllowlist) {
  EXPECT_ERROR_HAS(TorchFile(kDir / "os_system.bin"),
                   "os_system/data.pkl: pickle opcode at byte 169: global posix.system is not allowed (hint: tpro "
                   "reads only tensors from a pickle and never runs code in it");
  EXPECT_THAT(error_for_pickle(pk::dict({{"x", pk::global("os", "system") + pk::str("rm -rf /") + "\x85R"}})),
              HasSubstr("global os.system is not allowed"));
  // STACK_GLOBAL (protocol 4) goes through the same allowlist.
  EXPECT_THAT(error_for_pickle("\x80\x04" + pk::str("builtins") + pk::str("eval") + "\x93."),
              HasSubstr("pickle opcode at byte 24: global builtins.eval is not allowed"));
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("0", 6, 0, {6}, {1}, "DoubleStorage")}})),
              HasSubstr("storage type torch.DoubleStorage is not supported (hint: tpro reads float32, float16 and "
                        "bfloat16 tensors)"));
  EXPECT_ERROR_HAS(TorchFile(kDir / "int64.bin"), "storage type torch.LongStorage is not supported");
  // An allowed storage class is data, not something to call.
  EXPECT_THAT(error_for_pickle("\x80\x02" + pk::global("torch", "FloatStorage") + ")R."),
              HasSubstr("REDUCE calls the storage class torch.FloatStorage"));
}

TEST(TorchFile, RefusesLegacyNonContiguousAndForeignFiles) {
  EXPECT_ERROR_HAS(TorchFile(kDir / "legacy.bin"),
                   "legacy.bin: a legacy (pre-PyTorch 1.6) torch.save file, which is not supported (hint: re-save it");
  EXPECT_ERROR_HAS(TorchFile(kDir / "transposed.bin"),
                   "tensor of size (2, 3) has stride (1, 2), not contiguous (hint: save .contiguous() tensors");
  EXPECT_ERROR_HAS(TorchFile(kDir / "mixed_expected.safetensors"), "not a torch.save file (it is not a zip archive)");
  EXPECT_ERROR_HAS(TorchFile::from_bytes(make_zip({{"a/b.txt", "x"}}), "z.bin"),
                   "z.bin: zip archive without <archive>/data.pkl (hint: not a torch.save file)");
  EXPECT_ERROR_HAS(TorchFile::from_bytes(make_zip({{"a/data.pkl", "\x80\x02}."}, {"b/data.pkl", "\x80\x02}."}}), "z.bin"),
                   "holds two pickles, a/data.pkl and b/data.pkl");
}

TEST(TorchFile, RefusesHugeAndInconsistentSizes) {
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("0", int64_t(1) << 41, 0, {2, 3}, {3, 1})}})),
              HasSubstr("storage size 2199023255552 is out of range"));
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("0", 6, 0, {int64_t(1) << 30, int64_t(1) << 30, 4}, {1, 1, 1})}})),
              HasSubstr("tensor size (1073741824, 1073741824, 4) is out of range"));
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("0", 6, 2, {2, 3}, {3, 1})}})),
              HasSubstr("tensor of 6 elements at offset 2 runs past its storage of 6 elements"));
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("0", 6, -1, {2, 3}, {3, 1})}})),
              HasSubstr("at offset -1 runs past its storage"));
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("0", 6, 0, {2, -3}, {3, 1})}})),
              HasSubstr("tensor size (2, -3) is out of range"));
  // The persistent id claims more elements than the storage entry holds.
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("0", 8, 0, {2, 3}, {3, 1})}})),
              HasSubstr("tensor w: storage archive/data/0 has 24 bytes, expected 8 elements of 4 bytes"));
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", pk::tensor("7", 6, 0, {2, 3}, {3, 1})}})),
              HasSubstr("tensor w: its storage archive/data/7 is not in the archive"));
  // A string longer than the pickle.
  EXPECT_THAT(error_for_pickle("\x80\x02X" + le_bytes(0xfffffff0u, 4) + "abc"),
              HasSubstr("pickle truncated at byte 7 (a string of 4294967280 bytes)"));
  // A zip directory entry whose data runs past the entries.
  std::string z = with_pickle(one_tensor_pickle());
  const size_t cd = z.rfind(std::string("\x50\x4b\x01\x02", 4));  // the last central entry: archive/version
  z.replace(cd + 20, 8, le_bytes(1u << 30, 4) + le_bytes(1u << 30, 4));
  EXPECT_ERROR_HAS(TorchFile::from_bytes(z, "z.bin"), "zip entry archive/version: data (1073741824 bytes at offset");
  std::string many = with_pickle(one_tensor_pickle());
  many.replace(many.size() - 14, 4, le_bytes(0xffff - 1, 2) + le_bytes(0xffff - 1, 2));
  EXPECT_ERROR_HAS(TorchFile::from_bytes(many, "z.bin"), "zip end record claims 65534 entries");
}

TEST(TorchFile, RefusesCorruptArchives) {
  std::string z = with_pickle(one_tensor_pickle());
  const size_t at = z.find(f32_bytes(kW));
  z[at + 5] ^= 1;
  EXPECT_ERROR_HAS(TorchFile::from_bytes(z, "z.bin"),
                   "z.bin: zip entry archive/data/0 fails its CRC-32 check (hint: the file is corrupt or truncated)");
  EXPECT_ERROR_HAS(TorchFile::from_bytes(make_zip({{"archive/data.pkl", one_tensor_pickle(), 8}}), "z.bin"),
                   "zip entry archive/data.pkl is compressed (method 8); only stored entries are read");
  EXPECT_ERROR_HAS(TorchFile::from_bytes(torch_zip(one_tensor_pickle(), {{"0", f32_bytes(kW)}}).substr(0, 100), "z.bin"),
                   "z.bin: no zip end-of-central-directory record (hint: the file is truncated or not a zip archive)");
  std::vector<ZipPart> big_endian{{"archive/data.pkl", one_tensor_pickle()}, {"archive/byteorder", "big"}};
  EXPECT_ERROR_HAS(TorchFile::from_bytes(make_zip(big_endian), "z.bin"), "byteorder is 'big'; only little-endian");
  // Every truncation of a real file is an Error, never a crash or a read past the end.
  const std::string real = read_file(kDir / "mixed.bin");
  for (size_t n = 0; n < real.size(); ++n)
    ASSERT_THAT(thrown_by([&] { TorchFile::from_bytes(real.substr(0, n), "cut.bin"); }), ErrorWith("cut.bin")) << n;
}

TEST(TorchPickle, RefusesOpcodesAndShapesTorchSaveDoesNotWrite) {
  EXPECT_THAT(error_for_pickle("\x80\x02]."),
              HasSubstr("t.bin: archive/data.pkl: pickle opcode at byte 2: opcode 0x5d (']') is not one torch.save "
                        "writes for a dict of tensors"));
  EXPECT_THAT(error_for_pickle("\x80\x06}."), HasSubstr("pickle protocol 6 (torch.save writes 2; 2 to 5 are read)"));
  EXPECT_THAT(error_for_pickle("\x80\x02h\x05."), HasSubstr("memo key 5 was never stored"));
  EXPECT_THAT(error_for_pickle("\x80\x02s."), HasSubstr("pops an empty stack"));
  EXPECT_THAT(error_for_pickle("\x80\x02)(}u."), HasSubstr("SETITEM(S) on a tuple"));
  EXPECT_THAT(error_for_pickle("\x80\x02}}."), HasSubstr("pickle stops with 2 objects on its stack, expected one dict"));
  EXPECT_THAT(error_for_pickle("\x80\x02}"), HasSubstr("pickle ends at byte 3 without STOP"));
  EXPECT_THAT(error_for_pickle("\x80\x02K\x01."), HasSubstr("pickle holds an int, not a dict of tensors"));
  EXPECT_THAT(error_for_pickle(pk::dict({{"n", pk::integer(3)}})),
              HasSubstr("entry n is an int, not a tensor (hint: only a state dict is read)"));
  const std::string t = pk::tensor("0", 6, 0, {2, 3}, {3, 1});
  EXPECT_THAT(error_for_pickle(pk::dict({{"w", t}, {"w", t}})), HasSubstr("entry w appears twice"));
  EXPECT_THAT(error_for_pickle("\x80\x02" + pk::tuple({1}) + "}b."), HasSubstr("BUILD on a tuple"));
  EXPECT_THAT(error_for_pickle("\x80\x02" + pk::global("torch._utils", "_rebuild_tensor_v2") + pk::tuple({1, 2}) + "R."),
              HasSubstr("_rebuild_tensor_v2 with 2 arguments (expected 6 or 7)"));
  EXPECT_THAT(error_for_pickle("\x80\x02" + pk::str("storage") + "\x85Q."),
              HasSubstr("persistent id is not ('storage', type, key, location, numel)"));
}

TEST(TorchPickle, EveryByteMutationOfARealPickleIsHandled) {
  const MappedFile f(kDir / "mixed.bin");
  const auto entries = read_zip_directory(f.data(), f.size(), "mixed.bin");
  const std::string pkl(zip_entry_data(f.data(), entries.at(0), "mixed.bin"));
  ASSERT_EQ(entries.at(0).name, "mixed/data.pkl");
  ASSERT_EQ(parse_torch_pickle(pkl, "p").size(), 6u);
  size_t refused = 0;
  for (size_t i = 0; i < pkl.size(); ++i)
    for (uint8_t v : {uint8_t(0), uint8_t(0xff), uint8_t(pkl[i] ^ 0x10)}) {
      std::string m = pkl;
      m[i] = char(v);
      const Thrown t = thrown_by([&] { parse_torch_pickle(m, "p"); });
      ASSERT_TRUE(t.error || t.what == "threw nothing") << "byte " << i << " = " << int(v) << ": " << t.what;
      refused += t.error;
    }
  EXPECT_GT(refused, pkl.size());  // most mutations break it; the rest parse to other tensors
}
