// The /proc readers behind the memory plan: MemAvailable parsed (units, missing, lying
// values), file-backed ranges of a maps text (anonymous and malformed lines skipped), bytes of a
// span outside them, and this process's own maps seeing one of its mapped files.
#include <gtest/gtest.h>

#include "core/file.h"
#include "core/memory_info.h"

using namespace tpro;

TEST(MemoryInfo, ParsesMemAvailable) {
  EXPECT_EQ(parse_mem_available("MemTotal:       32000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n"),
            size_t(2048) * 1024);
  EXPECT_EQ(parse_mem_available("MemAvailable: 5 kB"), 5u * 1024);
  EXPECT_FALSE(parse_mem_available("MemTotal: 100 kB\n"));
  EXPECT_FALSE(parse_mem_available("XMemAvailable: 100 kB\n")) << "only a key at a line start";
  EXPECT_FALSE(parse_mem_available("MemAvailable: lots kB\n"));
  EXPECT_FALSE(parse_mem_available("MemAvailable: 100 MB\n"));
  EXPECT_FALSE(parse_mem_available("MemAvailable: 99999999999999999999999 kB\n"));
  EXPECT_TRUE(mem_available().has_value()) << "this test runs on Linux";
}

TEST(MemoryInfo, FindsFileBackedRanges) {
  const std::string maps =
      "7f0000001000-7f0000003000 r--p 00000000 08:01 1234   /models/a.safetensors\n"
      "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"
      "garbage line\n"
      "7f0000005000-7f0000004000 r--p 00000000 08:01 99 /backwards\n"
      "55550000-55560000 r-xp 00000000 08:01 77 /usr/bin/tpro";
  const auto r = parse_file_mappings(maps);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].begin, 0x55550000u);
  EXPECT_EQ(r[1].begin, 0x7f0000001000u);
  EXPECT_EQ(r[1].end, 0x7f0000003000u);
  const auto* p = reinterpret_cast<const void*>(uintptr_t(0x7f0000000800));
  EXPECT_EQ(bytes_outside(r, p, 0x1000), 0x800u) << "half before the mapping";
  EXPECT_EQ(bytes_outside(r, reinterpret_cast<const void*>(uintptr_t(0x7f0000003000)), 64), 64u);
  EXPECT_EQ(bytes_outside(r, reinterpret_cast<const void*>(uintptr_t(0x7f0000001100)), 0x100), 0u);
}

TEST(MemoryInfo, SeesThisProcesssMappedFile) {
  const fs::path f = fs::temp_directory_path() / "tpro_memory_info_map.bin";
  write_file_atomic(f, std::string(8192, 'x'));
  const MappedFile m(f);
  std::vector<char> heap(4096);
  const auto ranges = file_mappings();
  EXPECT_EQ(bytes_outside(ranges, m.data(), m.size()), 0u);
  EXPECT_EQ(bytes_outside(ranges, heap.data(), heap.size()), heap.size());
  fs::remove(f);
}
