// The shared test helpers (tests/common/test_util.h): EXPECT_ERROR_HAS passes only for a
// tpro::Error whose message holds the text, and otherwise fails saying what happened.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "common/test_util.h"

using namespace tpro;
using tpro::test::error_of;

namespace {
void throws_error() { fail("lora_rank expects an integer, got 0 (hint: 1 or more)"); }
void throws_other() { throw std::out_of_range("index 9"); }
void throws_int() { throw 3; }
void returns() {}
}  // namespace

TEST(TestUtil, ExpectErrorHasPassesOnASubstringOfTheError) {
  EXPECT_ERROR_HAS(throws_error(), "expects an integer");
  EXPECT_ERROR_HAS(throws_error(), std::string("(hint: 1 or more)")) << "context streams";
  EXPECT_EQ(error_of(throws_error), "lora_rank expects an integer, got 0 (hint: 1 or more)");
  EXPECT_EQ(error_of(returns), "(no error)");
}

TEST(TestUtil, ExpectErrorHasFailsSayingWhatHappened) {
  EXPECT_NONFATAL_FAILURE(EXPECT_ERROR_HAS(throws_error(), "got 1"), "Actual: tpro::Error: lora_rank expects");
  EXPECT_NONFATAL_FAILURE(EXPECT_ERROR_HAS(returns(), "x"), "threw nothing");
  EXPECT_NONFATAL_FAILURE(EXPECT_ERROR_HAS(throws_other(), "index 9"),
                          "threw std::out_of_range, not a tpro::Error: index 9");
  EXPECT_NONFATAL_FAILURE(EXPECT_ERROR_HAS(throws_int(), "3"), "threw something that is not a std::exception");
  EXPECT_NONFATAL_FAILURE(EXPECT_ERROR_HAS(returns(), "x") << "case 7", "statement: returns(); case 7");
}

TEST(TestUtil, FreshDirIsNewAndEmptyEachCall) {
  const auto a = tpro::test::fresh_dir("util"), b = tpro::test::fresh_dir("util");
  EXPECT_NE(a, b);
  EXPECT_TRUE(std::filesystem::is_empty(a));
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
}
