// io/zip_writer: archives written by ZipStoredWriter read back through the zip_stored reader
// (names, bytes, CRC-32), in the classic and the zip64 forms, and every misuse named.
#include "io/zip_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/crc32.h"
#include "io/zip_stored.h"

using namespace tpro;
using namespace tpro::test;

namespace {

struct Part {
  std::string name, data;
};

std::string archive(const std::vector<Part>& parts, bool zip64) {
  std::string out;
  ZipStoredWriter w([&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }, zip64);
  for (const Part& p : parts) {
    w.begin_entry(p.name, p.data.size(), crc32(p.data.data(), p.data.size()), 1700000000);
    // In two pieces: the entry's bytes may come in any number of writes.
    w.write(p.data.data(), p.data.size() / 2);
    w.write(p.data.data() + p.data.size() / 2, p.data.size() - p.data.size() / 2);
  }
  w.finish();
  EXPECT_EQ(w.bytes_written(), out.size());
  return out;
}

void expect_round_trip(bool zip64) {
  const std::vector<Part> parts = {{"adapter_config.json", "{\"r\": 4}"},
                                   {"adapter_model.safetensors", std::string(70000, 'x')},
                                   {"checkpoint-3/trainer_state.json", "{}"},
                                   {"empty.txt", ""}};
  const std::string z = archive(parts, zip64);
  const auto* d = reinterpret_cast<const uint8_t*>(z.data());
  const std::vector<ZipEntry> es = read_zip_directory(d, z.size(), "t.zip");
  ASSERT_EQ(es.size(), parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(es[i].name, parts[i].name);
    EXPECT_EQ(es[i].method, 0);
    EXPECT_EQ(std::string(zip_entry_data(d, es[i], "t.zip")), parts[i].data);
  }
}

}  // namespace

TEST(ZipWriter, ReadsBackThroughTheStoredReader) { expect_round_trip(false); }

TEST(ZipWriter, Zip64FormReadsBackToo) {
  expect_round_trip(true);
  const std::string z = archive({{"a", "b"}}, true);
  EXPECT_NE(z.find(std::string("\x50\x4b\x06\x06", 4)), std::string::npos) << "no zip64 end record";
}

TEST(ZipWriter, RefusesUnsafeAndDuplicateNames) {
  for (const char* name : {"/etc/passwd", "../up", "a/../b", "a\\b", "a//b", "./a"}) {
    ZipStoredWriter w([](const void*, size_t) {});
    EXPECT_THAT(error_of([&] { w.begin_entry(name, 0, 0, 0); }), ::testing::HasSubstr(cat("zip entry name '", name)))
        << name;
  }
  ZipStoredWriter w([](const void*, size_t) {});
  EXPECT_EQ(error_of([&] { w.begin_entry("", 0, 0, 0); }), "zip entry name '' is empty");
  w.begin_entry("a", 0, 0, 0);
  EXPECT_EQ(error_of([&] { w.begin_entry("a", 0, 0, 0); }), "zip entry name 'a' appears twice");
}

TEST(ZipWriter, EntrySizesMustMatchTheirBytes) {
  ZipStoredWriter w([](const void*, size_t) {});
  w.begin_entry("short", 4, 0, 0);
  w.write("ab", 2);
  EXPECT_EQ(error_of([&] { w.begin_entry("next", 0, 0, 0); }),
            "zip entry 'short' got 2 of its 4 bytes before the next entry (hint: the file changed while it was "
            "archived)");
  EXPECT_THAT(error_of([&] { w.write("abc", 3); }), ::testing::HasSubstr("3 bytes written past its declared size"));
  EXPECT_THAT(error_of([&] { w.finish(); }), ::testing::HasSubstr("got 2 of its 4 bytes"));
}
