// core/: dtype conversions, atomic writes, mmap errors, RNG state, arena bounds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "common/test_util.h"
#include "core/arena.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "core/tensor.h"

using namespace tpro;

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties go to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even).
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
}

TEST(DType, F16SoftMatchesHardware) {
  for (float f : {0.0f, -0.0f, 1.0f, -1.5f, 65504.0f, 1e-7f, 6.1e-5f, 3.14159f, 70000.0f, -1e-3f}) {
    uint16_t h = f32_to_f16_soft(f);
    EXPECT_EQ(h, f32_to_f16(f)) << f;
    EXPECT_EQ(f16_to_f32_soft(h), f16_to_f32(h)) << f;
  }
  for (uint32_t h = 0; h < 0x10000; h += 7) {
    float a = f16_to_f32_soft(uint16_t(h)), b = f16_to_f32(uint16_t(h));
    if (std::isnan(a)) {
      EXPECT_TRUE(std::isnan(b));
    } else {
      EXPECT_EQ(a, b) << h;
    }
  }
}

TEST(DType, Names) {
  DType t;
  ASSERT_TRUE(dtype_from_name("BF16", &t));
  EXPECT_EQ(t, DType::BF16);
  EXPECT_FALSE(dtype_from_name("Q4", &t));
  EXPECT_EQ(dtype_size(DType::F16), 2u);
}

TEST(File, AtomicWriteReplacesAndLeavesNoTemp) {
  auto dir = fs::temp_directory_path() / "tpro_core_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_file_atomic(dir / "a.txt", "first");
  write_file_atomic(dir / "a.txt", "second");
  EXPECT_EQ(read_file(dir / "a.txt"), "second");
  int n = 0;
  for (auto& e : fs::directory_iterator(dir)) (void)e, ++n;
  EXPECT_EQ(n, 1);
  {
    AtomicFileWriter w(dir / "b.bin");
    w.write("xx", 2);
  }  // not committed: nothing appears
  EXPECT_FALSE(fs::exists(dir / "b.bin"));
  fs::remove_all(dir);
}

TEST(File, MissingFileNamesPath) {
  EXPECT_ERROR_HAS(MappedFile m("/nonexistent/tpro/file.safetensors"), "/nonexistent/tpro/file.safetensors");
  EXPECT_THROW(read_file("/nonexistent/x"), Error);
}

TEST(File, AtomicDirReplacesOld) {
  auto base = fs::temp_directory_path() / "tpro_core_dir";
  fs::remove_all(base);
  fs::create_directories(base);
  auto fin = base / "ckpt";
  auto t1 = begin_atomic_dir(fin);
  write_file_atomic(t1 / "x", "1");
  commit_atomic_dir(t1, fin);
  auto t2 = begin_atomic_dir(fin);
  write_file_atomic(t2 / "x", "2");
  commit_atomic_dir(t2, fin);
  EXPECT_EQ(read_file(fin / "x"), "2");
  int n = 0;
  for (auto& e : fs::directory_iterator(base)) (void)e, ++n;
  EXPECT_EQ(n, 1);
  fs::remove_all(base);
}

TEST(File, AtomicWriteNeverFollowsALinkPlantedAsItsTempFile) {
  auto dir = fs::temp_directory_path() / ("tpro_core_link_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "out");
  write_file_atomic(dir / "victim.txt", "keep");
  // The temp name is predictable ("<name>.tmp-<pid>"): a link placed there must not be written through.
  fs::create_symlink(dir / "victim.txt", dir / "out" / ("a.json.tmp-" + std::to_string(::getpid())));
  write_file_atomic(dir / "out" / "a.json", "new");
  EXPECT_EQ(read_file(dir / "victim.txt"), "keep");
  EXPECT_EQ(read_file(dir / "out" / "a.json"), "new");
  EXPECT_FALSE(fs::is_symlink(dir / "out" / "a.json"));
  fs::remove_all(dir);
}

TEST(File, IsWithinComparesWholeComponents) {
  EXPECT_TRUE(is_within("/srv/loras", "/srv/loras"));
  EXPECT_TRUE(is_within("/srv/loras", "/srv/loras/run/x.json"));
  EXPECT_TRUE(is_within("/srv/loras/", "/srv/loras/run"));
  EXPECT_FALSE(is_within("/srv/loras", "/srv/loras2/run"));  // a string prefix is not a folder prefix
  EXPECT_FALSE(is_within("/srv/loras", "/srv"));
  EXPECT_FALSE(is_within("/srv/loras", "/etc/passwd"));
}

TEST(Rng, StateRoundTripAndRange) {
  Rng a(42);
  for (int i = 0; i < 10; ++i) a.next_u64();
  Rng b(0);
  b.set_state(a.state());
  EXPECT_EQ(a.next_u64(), b.next_u64());
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    double u = a.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
  float h = hash_uniform(1, 2);
  EXPECT_EQ(h, hash_uniform(1, 2));
  EXPECT_NE(h, hash_uniform(1, 3));
}

TEST(Arena, PlansThenTakes) {
  Arena ar;
  ar.reserve(10);
  ar.reserve(100);
  ar.allocate();
  void* a = ar.take(10);
  void* b = ar.take(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 64, 0u);
  EXPECT_EQ(shape_str({4, 576}), "(4, 576)");
}
