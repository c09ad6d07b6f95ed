// Unicode helpers: NFC/NFD against Python's unicodedata (fixture), U+FFFD repair following
// the Unicode 3.9 "maximal subpart" example, and the GPT-2 byte alphabet.
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/file.h"

namespace tpro::test {
using namespace tpro::tok;  // the tokenizer internals under test
namespace {

TEST(Unicode, NfcAndNfdMatchPythonUnicodedata) {
  auto j = nlohmann::json::parse(read_file(std::string(TPRO_FIXTURES) + "/tokenizer/nfc_cases.json"));
  ASSERT_EQ(j["unicode"].get<std::string>(), unicode_version());
  size_t n = 0;
  for (const auto& c : j["cases"]) {
    std::string in = c["in"].get<std::string>();
    EXPECT_EQ(nfc(in), c["nfc"].get<std::string>()) << "case " << n;
    EXPECT_EQ(nfd(in), c["nfd"].get<std::string>()) << "case " << n;
    ++n;
  }
  EXPECT_GE(n, 1000u);
}

TEST(Unicode, NfcKeepsInertTextAndComposesInsideIt) {
  EXPECT_EQ(nfc("plain ASCII, 日本語"), "plain ASCII, 日本語");
  EXPECT_EQ(nfc("cafe\xCC\x81 ok"), "caf\xC3\xA9 ok");                     // e + U+0301 -> é
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // jamo L V T -> 각
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                              // Å sign (singleton) -> Å
  EXPECT_EQ(nfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");              // U+0958 is excluded: stays decomposed
}

TEST(Unicode, LossyRepairReplacesMaximalSubparts) {
  // Unicode 3.9, table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  std::string bad =
      "a\xF1\x80\x80\xE1\x80\xC2"
      "b\x80"
      "c\x80\xBF"
      "d";
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy(bad), "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_EQ(utf8_lossy("\xE6\x97"), r);              // a truncated 3-byte sequence is one subpart
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);  // surrogates are never valid
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), r + r);          // overlong
  EXPECT_EQ(utf8_lossy("ok \xF0\x9F\x98\x80"), "ok \xF0\x9F\x98\x80");
  EXPECT_FALSE(utf8_valid("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_TRUE(utf8_valid("\xF4\x8F\xBF\xBF"));
}

TEST(Unicode, WhitespaceIsTheWhiteSpaceProperty) {
  for (uint32_t cp : {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u, 0x3000u})
    EXPECT_TRUE(is_whitespace(cp)) << cp;
  for (uint32_t cp : {0x41u, 0x200Bu, 0xFEFFu, 0x180Eu, 0x1Fu}) EXPECT_FALSE(is_whitespace(cp)) << cp;
}

TEST(Unicode, ByteAlphabetIsABijection) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string& u = byte_to_unicode()[size_t(b)];
    seen.insert(u);
    size_t i = 0;
    EXPECT_EQ(unicode_to_byte(next_codepoint(u, i)), b);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(byte_to_unicode()[' '], "\xC4\xA0");   // Ġ
  EXPECT_EQ(byte_to_unicode()['\n'], "\xC4\x8A");  // Ċ
  EXPECT_EQ(byte_to_unicode()['A'], "A");
  EXPECT_EQ(unicode_to_byte(0x4E00), -1);
}

}  // namespace
}  // namespace tpro::test

// Found by fuzz/fuzz_gguf: a vocabulary piece ending in a cut-off sequence was read past its end.
TEST(Unicode, CutOffSequenceIsNotReadPastTheEnd) {
  EXPECT_EQ(tpro::tok::to_codepoints("a\xE2\x82"), (std::vector<uint32_t>{0x61, 0xE2, 0x82}));
  EXPECT_EQ(tpro::tok::to_codepoints("\xF0\x9F\x99"), (std::vector<uint32_t>{0xF0, 0x9F, 0x99}));
  EXPECT_EQ(tpro::tok::to_codepoints("\xE2\x82\xAC"), (std::vector<uint32_t>{0x20AC}));  // whole: unchanged
}
