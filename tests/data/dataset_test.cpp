// build_dataset end to end with the byte codec: sources, hybrid shares, cutoff policy, eval
// split, skipped bad lines, natural file order, and the bad-input corpus (each error message
// asserted).
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "data/dataset.h"
#include "data/text_files.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;
using Strings = std::vector<std::string>;

namespace {

// n sentences of 14 bytes each ("Aaaa aaaa 07. "); with cutoff 16 each is one block.
std::string numbered_text(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "Aaaa aaaa " + std::string(1, char('0' + i / 10)) + char('0' + i % 10) + ". ";
  return s;
}

std::string numbered_rows(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "{\"q\": \"q" + std::to_string(i) + "\", \"a\": \"a" + std::to_string(i) + "\"}\n";
  return s;
}

Dataset build(const DataOptions& o, const ChatRender& chat = nullptr) { return build_dataset(o, byte_codec(), chat); }

}  // namespace

TEST(Dataset, FormattedRowsWithTrainOnlyAfter) {
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("d.jsonl", "{\"instruction\": \"Add.\", \"output\": \"2\"}\n").string();
  o.format = std::string(TPRO_SOURCE_DIR) + "/formats/alpaca-chatbot-format.json";
  o.train_only_after = "Assistant:";
  o.add_eos_token = true;
  o.cutoff_len = 64;
  Dataset ds = build(o);
  ASSERT_EQ(ds.train.size(), 1u);
  EXPECT_EQ(show(ds.train[0], byte_codec()), "<s>[User: Add.\nAssistant:] 2</s>");
  EXPECT_EQ(ds.train[0].kind, BlockKind::kFormatted);
  EXPECT_EQ(ds.stats.rows, 1);
  // train_on_inputs trains the prompt too.
  o.train_on_inputs = true;
  EXPECT_EQ(show(build(o).train[0], byte_codec()), "<s>User: Add.\nAssistant: 2</s>");
}

TEST(Dataset, ChatRowsUseTheRenderer) {
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("c.json", R"([{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}])").string();
  auto render = [](const std::vector<ChatMessage>& m, bool gen) {
    std::string s;
    for (const auto& x : m) s += x.role + ": " + x.content + "\n";
    return s + (gen ? "assistant: " : "");
  };
  o.add_bos_token = false;
  Dataset ds = build(o, render);
  ASSERT_EQ(ds.train.size(), 1u);
  EXPECT_EQ(show(ds.train[0], byte_codec()), "u[ser: Hi\nassistant: ]Yo\n");
  // Without a renderer chat rows are an error that says what to do.
  std::string e = error_of([&] { build(o); });
  EXPECT_NE(e.find("c.json row 1: chat rows need a chat template"), std::string::npos) << e;
}

TEST(Dataset, RowsWithoutFormatOrMessagesAreAnError) {
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("d.jsonl", numbered_rows(2)).string();
  std::string e = error_of([&] { build(o); });
  EXPECT_NE(e.find("d.jsonl:1: the row has no \"messages\" or \"conversations\" (hint: rows like"), std::string::npos) << e;
}

TEST(Dataset, OverlongRowsTrimmedOrEliminatedWithCounts) {
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("d.jsonl", "{\"q\": \"short\", \"a\": \"ok\"}\n"
                                  "{\"q\": \"a much longer question\", \"a\": \"answer\"}\n"
                                  "{\"q\": \"q\", \"a\": \"a\"}\n").string();
  o.format = dir.file("f.json", R"({"q,a": "%q%|%a%"})").string();
  o.cutoff_len = 16;
  o.train_only_after = "|";
  Dataset ds = build(o);
  // Row 2 is 1 + 29 tokens: trimmed to 16, which cuts before "|": nothing trained -> dropped.
  EXPECT_EQ(texts(ds.train, byte_codec()), (Strings{"<s>short|ok", "<s>q|a"}));
  EXPECT_EQ(ds.stats.overlong, 1);
  EXPECT_EQ(ds.stats.trimmed, 1);
  EXPECT_EQ(ds.stats.untrained_dropped, 1);
  EXPECT_EQ(ds.stats.longest, 30);
  o.train_only_after = "";
  ds = build(o);
  EXPECT_EQ(texts(ds.train, byte_codec())[1], "<s>a much longer q");  // trimmed to 16
  EXPECT_EQ(ds.train[1].n_trained(), 15);
  o.eliminate_long_blocks = true;
  ds = build(o);
  EXPECT_EQ(texts(ds.train, byte_codec()), (Strings{"<s>short|ok", "<s>q|a"}));
  EXPECT_EQ(ds.stats.eliminated, 1);
  EXPECT_EQ(ds.stats.trimmed, 0);
}

TEST(Dataset, HybridTakesEachShareExactly) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", numbered_text(10)).string();
  o.dataset = dir.file("d.jsonl", numbered_rows(20)).string();
  o.format = dir.file("f.json", R"({"q,a": "%q% %a%"})").string();
  o.cutoff_len = 16;
  o.precize_slicing_overlap = false;
  o.hybrid_training = true;
  o.hybrid_text_ratio = 30;
  o.hybrid_data_ratio = 45;
  Dataset ds = build(o);
  int64_t text = 0, data = 0;
  int32_t last_text = -1, last_row = -1;
  for (const Block& b : ds.train) {
    if (b.source == BlockSource::kRawText) {
      ++text;
      EXPECT_GT(b.begin, last_text);  // original order kept
      last_text = int32_t(b.begin);
    } else {
      ++data;
      EXPECT_GT(b.doc, last_row);
      last_row = b.doc;
    }
  }
  EXPECT_EQ(text, 3);  // 30% of 10
  EXPECT_EQ(data, 9);  // 45% of 20
  EXPECT_EQ(ds.stats.hybrid_text_used, 3);
  EXPECT_EQ(ds.stats.hybrid_text_total, 10);
  EXPECT_EQ(ds.stats.hybrid_data_used, 9);
  EXPECT_EQ(ds.stats.hybrid_data_total, 20);
  // Same seed, same subset; another seed, another subset.
  EXPECT_EQ(texts(build(o).train, byte_codec()), texts(ds.train, byte_codec()));
  o.seed = 7;
  EXPECT_NE(texts(build(o).train, byte_codec()), texts(ds.train, byte_codec()));
  o.hybrid_text_ratio = 25;  // 2.5 rounds to 3
  o.hybrid_data_ratio = 100;
  ds = build(o);
  EXPECT_EQ(ds.stats.hybrid_text_used, 3);
  EXPECT_EQ(ds.stats.hybrid_data_used, 20);
}

TEST(Dataset, EvalSplitHoldsOutBlocksAndDropsOverlappingOnes) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", numbered_text(20)).string();
  o.cutoff_len = 32;  // two sentences per block, overlaps between them
  o.eval_split = 20;
  Dataset ds = build(o);
  EXPECT_EQ(ds.stats.eval_held_out, 2);  // 20% of 10 regular blocks
  ASSERT_EQ(ds.eval.size(), 2u);
  for (const Block& e : ds.eval) {
    EXPECT_NE(e.kind, BlockKind::kOverlap);
    for (const Block& t : ds.train) EXPECT_TRUE(t.end <= e.begin || t.begin >= e.end) << t.begin << " " << e.begin;
  }
  EXPECT_GE(ds.stats.eval_leak_dropped, 2);  // each held-out block has at least one overlap neighbour
  EXPECT_EQ(int64_t(ds.train.size()), 10 + 10 - 2 - ds.stats.eval_leak_dropped);
}

TEST(Dataset, SeparateEvalFile) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", numbered_text(4)).string();
  o.eval_dataset = dir.file("e.txt", numbered_text(3)).string();
  o.cutoff_len = 16;
  Dataset ds = build(o);
  EXPECT_EQ(ds.eval.size(), 3u);  // eval text is sliced once, without overlaps
  EXPECT_EQ(ds.train.size(), 4u);
}

TEST(Dataset, FolderOfFilesInNaturalOrderWithBlankFiles) {
  ScratchDir dir;
  dir.file("in/1.txt", "Aaa aaa");  // no final period: files never run together
  dir.file("in/2.txt", "");
  dir.file("in/10.txt", "  \n\t ");
  dir.file("in/3.txt", "\xEF\xBB\xBF" "bbb.\r\nCcc.");
  dir.file("in/notes.md", "ignored");
  DataOptions o;
  o.raw_text_file = (dir.path() / "in").string();
  o.precize_slicing_overlap = false;
  Dataset ds = build(o);
  EXPECT_EQ(texts(ds.train, byte_codec()), (Strings{"<s>Aaa aaa", "<s>bbb.\nCcc."}));
  EXPECT_EQ(ds.stats.files, 4);
  EXPECT_EQ(ds.stats.empty_files, 2);
}

TEST(Dataset, FolderOfFilesReadsInNaturalNotLexicalOrder) {
  ScratchDir dir;
  // Lexical order would be 1, 10, 100, 2, 9.
  for (const char* n : {"10", "2", "100", "1", "9"}) dir.file(cat("in/", n, ".txt"), cat("File ", n, "."));
  DataOptions o;
  o.raw_text_file = (dir.path() / "in").string();
  o.precize_slicing_overlap = false;
  Dataset ds = build(o);
  EXPECT_EQ(texts(ds.train, byte_codec()),
            (Strings{"<s>File 1.", "<s>File 2.", "<s>File 9.", "<s>File 10.", "<s>File 100."}));
  EXPECT_EQ(ds.stats.files, 5);
}

TEST(NaturalLess, DigitRunsCompareByValue) {
  EXPECT_TRUE(natural_less("a2", "a10"));
  EXPECT_FALSE(natural_less("a10", "a2"));
  EXPECT_TRUE(natural_less("ch2-p10.txt", "ch10-p1.txt"));  // the first differing run decides
  EXPECT_TRUE(natural_less("ch2-p3.txt", "ch2-p10.txt"));
  EXPECT_TRUE(natural_less("a99", "a123456789012345678901234567890"));  // no 64-bit overflow
  EXPECT_TRUE(natural_less("a007", "a8"));                             // value first ...
  EXPECT_TRUE(natural_less("a7", "a007"));                             // ... then fewer zeros first
  EXPECT_FALSE(natural_less("a007", "a7"));
  EXPECT_TRUE(natural_less("a", "a1"));    // a prefix sorts first
  EXPECT_TRUE(natural_less("a1", "ab"));   // other runs compare bytewise: '1' < 'b'
  EXPECT_TRUE(natural_less("B.txt", "a.txt"));  // bytewise, so case-sensitive
  EXPECT_FALSE(natural_less("x10.txt", "x10.txt"));
  Strings files = {"10.txt", "9.txt", "100.txt", "10b.txt", "1.txt", "10a.txt", "2.txt", "01.txt"};
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) { return natural_less(a, b); });
  EXPECT_EQ(files, (Strings{"1.txt", "01.txt", "2.txt", "9.txt", "10.txt", "10a.txt", "10b.txt", "100.txt"}));
}

TEST(Dataset, SkippedBadLinesAreCounted) {
  ScratchDir dir;
  DataOptions o;
  o.dataset = dir.file("d.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n{oops\n[1]\n"
                                  "{\"instruction\": \"c\", \"output\": \"d\"}\n\"str\"\n").string();
  o.format = std::string(TPRO_SOURCE_DIR) + "/formats/alpaca-chatbot-format.json";
  EXPECT_ERROR_HAS(build(o), "d.jsonl:2: invalid JSON");
  o.skip_bad_lines = true;
  Dataset ds = build(o);
  EXPECT_EQ(ds.train.size(), 2u);
  EXPECT_EQ(ds.stats.rows, 2);
  EXPECT_EQ(ds.stats.bad_lines_skipped, 3);
}

TEST(Dataset, CrlfTextMatchesTheHardCut) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("t.txt", "Aaa aaa.\r\nBbb bbb.\r\n\r\n\r\nCcc ccc.\rDdd.").string();
  o.precize_slicing_overlap = false;
  EXPECT_EQ(texts(build(o).train, byte_codec()), (Strings{"<s>Aaa aaa.\nBbb bbb.", "<s>Ccc ccc.\nDdd."}));
}

TEST(Dataset, BadInputs) {
  ScratchDir dir;
  auto err = [](const DataOptions& o) { return error_of([&] { build(o); }); };
  DataOptions o;
  o.raw_text_file = (dir.path() / "missing.txt").string();
  EXPECT_NE(err(o).find("raw text file not found: "), std::string::npos) << err(o);
  o.raw_text_file = dir.file("bin.txt", std::string("MZ\x90\0\x03", 5)).string();
  EXPECT_NE(err(o).find("bin.txt: looks like a binary file (NUL byte at offset 3)"), std::string::npos) << err(o);
  o.raw_text_file = dir.file("latin1.txt", "ok\ncaf\xe9 au lait").string();
  EXPECT_NE(err(o).find("latin1.txt: invalid UTF-8 at line 2, column 4 (byte offset 6) (hint: re-save the file as UTF-8)"),
            std::string::npos) << err(o);
  o.raw_text_file = dir.file("empty.txt", " \n ").string();
  EXPECT_NE(err(o).find("no training blocks left after filtering"), std::string::npos) << err(o);
  o.raw_text_file = dir.file("small.txt", "Hi. Yo.").string();
  o.min_chars = 10;
  EXPECT_NE(err(o).find("no training blocks left after filtering: 2 blocks had <= min_chars=10 characters"),
            std::string::npos) << err(o);
  std::filesystem::create_directories(dir.path() / "nothing");
  o.raw_text_file = (dir.path() / "nothing").string();
  EXPECT_NE(err(o).find("contains no .txt files"), std::string::npos) << err(o);

  DataOptions p;
  EXPECT_NE(err(p).find("no training data"), std::string::npos);
  p.raw_text_file = dir.file("a.txt", "A.").string();
  p.dataset = dir.file("d.jsonl", numbered_rows(1)).string();
  EXPECT_NE(err(p).find("set hybrid_training to train on both"), std::string::npos);
  p.dataset = (dir.path() / "missing.jsonl").string();
  p.hybrid_training = true;
  EXPECT_NE(err(p).find("dataset file not found: "), std::string::npos) << err(p);
  p.hybrid_text_ratio = 120;
  EXPECT_NE(err(p).find("hybrid_text_ratio must be a percentage in [0, 100], got 120"), std::string::npos);
  DataOptions q;
  q.raw_text_file = p.raw_text_file;
  q.eval_split = 100;
  EXPECT_NE(err(q).find("eval_split must be a percentage in [0, 100)"), std::string::npos);
  q.eval_split = 50;  // one block: nothing left to train on
  EXPECT_NE(err(q).find("leaves nothing to train on"), std::string::npos) << err(q);
  DataOptions r;
  r.dataset = dir.file("x.txt", "A.").string();
  EXPECT_NE(err(r).find("is raw text (hint: use raw_text_file"), std::string::npos);
}

TEST(Dataset, EosNeedsATokenizerEos) {
  ScratchDir dir;
  DataOptions o;
  o.raw_text_file = dir.file("a.txt", "A.").string();
  o.add_eos_token = true;
  std::string e = error_of([&] { build_dataset(o, byte_codec(true, false), nullptr); });
  EXPECT_NE(e.find("add_eos_token is on but the tokenizer has no EOS token"), std::string::npos) << e;
  // No BOS in the tokenizer: add_bos_token is simply a no-op.
  o.add_eos_token = false;
  EXPECT_EQ(texts(build_dataset(o, byte_codec(false, false), nullptr).train, byte_codec()), (Strings{"A."}));
}

// Training PRO keeps chat JSONL in its own keys: jsonl_dataset is read as chat rows when dataset
// is empty (a format set alongside is for dataset only), and jsonl_eval_dataset likewise.
TEST(Dataset, JsonlDatasetKeysAreChatRows) {
  ScratchDir dir;
  DataOptions o;
  const std::string chat = R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]})";
  o.jsonl_dataset = dir.file("c.jsonl", chat + "\n").string();
  o.jsonl_eval_dataset = dir.file("e.jsonl", chat + "\n" + chat + "\n").string();
  o.format = dir.file("f.json", R"({"q,a": "%q%|%a%"})").string();
  o.add_bos_token = false;
  auto render = [](const std::vector<ChatMessage>& m, bool gen) {
    std::string s;
    for (const auto& x : m) s += x.role + ": " + x.content + "\n";
    return s + (gen ? "assistant: " : "");
  };
  EXPECT_EQ(o.rows_path(), o.jsonl_dataset);
  EXPECT_EQ(o.rows_format(), "");
  Dataset ds = build(o, render);
  ASSERT_EQ(ds.train.size(), 1u);
  EXPECT_EQ(show(ds.train[0], byte_codec()), "u[ser: Hi\nassistant: ]Yo\n");
  EXPECT_EQ(ds.eval.size(), 2u);
  // dataset wins over jsonl_dataset, and its rows go through the format.
  o.dataset = dir.file("d.jsonl", "{\"q\": \"a\", \"a\": \"b\"}\n").string();
  o.eval_dataset = o.dataset;
  EXPECT_EQ(o.rows_format(), o.format);
  ds = build(o, render);
  ASSERT_EQ(ds.train.size(), 1u);
  EXPECT_EQ(show(ds.train[0], byte_codec()), "a|b");
  EXPECT_EQ(ds.eval.size(), 1u);
  o.dataset = dir.file("t.txt", "A.").string();
  EXPECT_ERROR_HAS(build(o, render), "dataset " + o.dataset + " is raw text");
}
