// train/perplexity's evaluations.csv beyond the round trip: a comment changed in place keeps
// every other byte of the file (other rows, extra columns, odd quoting, CRLF endings), is
// quoted when it holds commas, quotes or newlines, and is refused when the row is no longer
// the evaluation the page showed; extra columns are read around and left empty on append.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/error.h"
#include "train/perplexity.h"

using namespace tpro;
using ::testing::HasSubstr;

namespace {

fs::path fresh_csv(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tpro_evalcsv_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir / "evaluations.csv";
}

}  // namespace

TEST(EvaluationsCsv, CommentChangesOnlyItsField) {
  const fs::path csv = fresh_csv("comment");
  // Someone's extra column "gpu", a needlessly quoted field, and CRLF line endings.
  const std::string head = "gpu,model,lora,dataset,perplexity,stride,max_length,tokens,date,comment\r\n";
  const std::string row0 = "\"A100\",m,\"l,1\",d.txt,12.500000,512,2048,100,2026-01-01 10:00:00,first\r\n";
  const std::string row1 = "H200,m,,d.txt,9.000000,512,2048,100,2026-01-02 10:00:00,\r\n";
  const std::string row2 = "x,m2,l2,e.txt,7.000000,256,1024,50,2026-01-03 10:00:00,\"multi\nline\"\r\n";
  write_file_atomic(csv, head + row0 + "\r\n" + row1 + row2);
  const auto rows = read_evaluation_csv(csv);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].lora, "l,1");
  EXPECT_EQ(rows[2].comment, "multi\nline");

  set_evaluation_comment(csv, 1, rows[1], "says \"good\", mostly\nsecond line");
  EXPECT_EQ(read_file(csv), head + row0 + "\r\n" +
                                "H200,m,,d.txt,9.000000,512,2048,100,2026-01-02 10:00:00,"
                                "\"says \"\"good\"\", mostly\nsecond line\"\r\n" +
                                row2);
  EXPECT_EQ(read_evaluation_csv(csv)[1].comment, "says \"good\", mostly\nsecond line");

  // An append fills our nine columns by name and leaves "gpu" empty.
  append_evaluation_csv(csv, {"m3", "", "f.txt", "", "2026-01-04 10:00:00", 5.0, 16, 32, 10});
  EXPECT_THAT(read_file(csv), testing::EndsWith("\n,m3,,f.txt,5.000000,16,32,10,2026-01-04 10:00:00,\n"));
  EXPECT_EQ(read_evaluation_csv(csv).size(), 4u);
}

TEST(EvaluationsCsv, CommentRefusedWhenTheRowChanged) {
  const fs::path csv = fresh_csv("changed");
  append_evaluation_csv(csv, {"m", "a", "d", "", "2026-01-01 10:00:00", 2.0, 16, 32, 10});
  const auto rows = read_evaluation_csv(csv);
  EvaluationRow other = rows[0];
  other.lora = "b";
  const std::string before = read_file(csv);
  EXPECT_ERROR_HAS(set_evaluation_comment(csv, 0, other, "x"),
                   "evaluations.csv:2: row 0 is the evaluation of 'm' + 'a' on 'd' at 2026-01-01 10:00:00, not of "
                   "'m' + 'b' on 'd' at 2026-01-01 10:00:00 (hint: the file changed; reload the results)");
  EXPECT_ERROR_HAS(set_evaluation_comment(csv, 1, rows[0], "x"), "evaluations.csv: there is no row 1 (the file has 1 rows)");
  EXPECT_EQ(read_file(csv), before);
}

TEST(EvaluationsCsv, RowsWithTheWrongWidthAreErrors) {
  const fs::path csv = fresh_csv("width");
  write_file_atomic(csv, "extra,model,lora,dataset,perplexity,stride,max_length,tokens,date,comment\n"
                         "1,m,,d,3.5,256,1024,10,now,\n");
  EXPECT_EQ(read_evaluation_csv(csv).size(), 1u);
  write_file_atomic(csv, "extra,model,lora,dataset,perplexity,stride,max_length,tokens,date,comment\n"
                         "m,,d,3.5,256,1024,10,now,\n");
  EXPECT_ERROR_HAS(read_evaluation_csv(csv),
                   "evaluations.csv:2: expected 10 fields (extra,model,lora,dataset,perplexity,stride,max_length,"
                   "tokens,date,comment), got 9");
}
