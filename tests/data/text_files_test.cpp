// data/text_files: a raw-text folder reads only what is in it. A .txt that is a symlink leading
// out of the folder is refused with a message naming the file and where it leads (never read,
// never silently dropped); links that stay inside are read.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/error.h"
#include "data/text_files.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;
namespace fs = std::filesystem;

TEST(TextFiles, FolderRefusesALinkThatLeadsOut) {
  ScratchDir dir;
  dir.file("in/1.txt", "One.");
  const fs::path secret = dir.file("elsewhere/secret.txt", "Not for training.");
  fs::create_symlink(secret, dir.path() / "in" / "2.txt");
  const std::string in = (dir.path() / "in").string();
  EXPECT_EQ(error_of([&] { read_text_source(in); }),
            "raw text folder " + in + ": 2.txt is a symlink to " + fs::canonical(secret).string() +
                ", outside the folder (hint: copy the file into the folder, or name it in raw_text_file itself)");
  // Named directly, the same file is the user's explicit choice.
  EXPECT_EQ(read_text_source(dir.path() / "in" / "2.txt").at(0).text, "Not for training.");
}

TEST(TextFiles, FolderReadsLinksThatStayInside) {
  ScratchDir dir;
  dir.file("in/1.txt", "One.");
  dir.file("in/sub/real.txt", "Two.");
  fs::create_symlink("sub/real.txt", dir.path() / "in" / "2.txt");
  const std::vector<TextDoc> docs = read_text_source(dir.path() / "in");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "One.");
  EXPECT_EQ(docs[1].text, "Two.");
}
