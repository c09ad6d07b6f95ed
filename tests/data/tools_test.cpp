// data/tools.h, Training PRO's dataset tools: instruction rows and text blocks to chat rows,
// JSONL and JSON-array output read back by the dataset reader, splits by percent (Training
// PRO's floor) and into parts (every row once, seeded), every block dumped with its counts,
// training_prompt.json's three shapes, and outputs never written over without force.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "data/data_test_util.h"
#include "data/dataset.h"
#include "data/tools.h"

using namespace tpro;
using namespace tpro::test;
using ojson = nlohmann::ordered_json;
using ::testing::HasSubstr;

namespace {

JsonRows rows_of(const std::string& text, const std::string& origin = "d.json") {
  return parse_json_rows(text, origin, false);
}

JsonRows numbered(int n) {
  ojson a = ojson::array();
  for (int i = 0; i < n; ++i) a.push_back(ojson{{"i", i}});
  return rows_of(a.dump());
}

std::vector<int> ids(const std::vector<ojson>& rows) {
  std::vector<int> v;
  for (const auto& r : rows) v.push_back(r["i"].get<int>());
  return v;
}

}  // namespace

TEST(DataTools, InstructionsBecomeChatRows) {
  const JsonRows rows = rows_of(R"([{"instruction": "Add 2+2", "output": "4"},
                                    {"instruction": "Translate", "input": "chat", "output": "cat"},
                                    {"instruction": "Blank input", "input": "  ", "output": "ok"}])");
  const auto chat = instructions_to_chat(rows, "Be brief.");
  ASSERT_EQ(chat.size(), 3u);
  EXPECT_EQ(chat[0].dump(), R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Add 2+2"},)"
                            R"({"role":"assistant","content":"4"}]})");
  EXPECT_EQ(chat[1]["messages"][1]["content"], "Translate\n\nchat");  // input kept (Training PRO drops it)
  EXPECT_EQ(chat[2]["messages"][1]["content"], "Blank input");
  EXPECT_EQ(instructions_to_chat(rows, "")[0]["messages"].size(), 2u);  // no system message
  EXPECT_ERROR_HAS(instructions_to_chat(rows_of(R"([{"instruction": "x"}, {"instruction": "y", "output": 3}])"), ""),
                   "d.json row 1: no \"output\" string (hint: json-to-jsonl converts Training PRO's instruction files");
}

TEST(DataTools, TextBlocksBecomeChatRows) {
  const auto chat = text_to_chat("First poem\r\nline two\r\n\r\n\r\n\n\n\n  \n\n\nSecond poem  \n\n", "Sys", "Write.");
  ASSERT_EQ(chat.size(), 2u);
  EXPECT_EQ(chat[0]["messages"][2]["content"], "First poem\nline two");
  EXPECT_EQ(chat[1]["messages"][2]["content"], "Second poem");
  EXPECT_EQ(chat[1]["messages"][0]["content"], "Sys");
  EXPECT_EQ(chat[1]["messages"][1]["content"], "Write.");
  EXPECT_TRUE(text_to_chat("\n\n\n\n", "s", "p").empty());
}

TEST(DataTools, OutputReadsBackInBothForms) {
  const auto chat = text_to_chat("a\n\n\nb", "s", "p");
  for (bool array : {false, true}) {
    const std::string text = rows_text(chat, array);
    EXPECT_EQ(text.front(), array ? '[' : '{');
    const JsonRows back = parse_json_rows(text, "x.jsonl", false);
    ASSERT_EQ(back.rows.size(), 2u);
    EXPECT_EQ(back.rows[1].value, chat[1]);
  }
  const std::string lines = rows_text(chat, false);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 2);
}

TEST(DataTools, SplitByPercentAsTrainingPro) {
  const JsonRows rows = numbered(10);
  auto s = split_by_percent(rows, 10, true, 42);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].size(), 9u);  // int(10 * 0.9)
  EXPECT_EQ(s[1].size(), 1u);
  std::vector<int> all = ids(s[0]);
  for (int i : ids(s[1])) all.push_back(i);
  EXPECT_EQ(std::set<int>(all.begin(), all.end()).size(), 10u);
  EXPECT_NE(ids(s[0]), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));   // shuffled
  EXPECT_EQ(ids(split_by_percent(rows, 10, true, 42)[0]), ids(s[0]));     // by the seed
  EXPECT_EQ(ids(split_by_percent(rows, 35, false, 1)[1]), (std::vector<int>{6, 7, 8, 9}));  // int(6.5)
  EXPECT_ERROR_HAS(split_by_percent(rows, 100, true, 1), "eval percent must be between 0 and 100 (exclusive), got 100");
  EXPECT_ERROR_HAS(split_by_percent(numbered(3), 90, true, 1),
                   "splitting 3 rows at 90% leaves no training rows (hint: more rows or another --eval-percent)");
}

TEST(DataTools, SplitIntoParts) {
  const auto parts = split_into_parts(numbered(10), 3, false, 0);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(ids(parts[0]), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(ids(parts[1]), (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(ids(parts[2]), (std::vector<int>{6, 7, 8, 9}));
  EXPECT_ERROR_HAS(split_into_parts(numbered(2), 3, false, 0), "cannot split 2 rows into 3 parts (expected 2 to 2)");
  EXPECT_ERROR_HAS(split_into_parts(numbered(2), 1, false, 0), "cannot split 2 rows into 1 parts");
}

TEST(DataTools, DumpsEveryBlockWithItsCounts) {
  DataOptions o;
  const fs::path d = fresh_dir("dump");
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Sentence number " + std::to_string(i) + " is here. ";
  write_file_atomic(d / "t.txt", text);
  o.raw_text_file = (d / "t.txt").string();
  o.cutoff_len = 32;
  o.eval_split = 10;
  const TokenCodec c = byte_codec();
  const Dataset ds = build_dataset(o, c, nullptr);
  ASSERT_GT(ds.train.size(), 10u);  // far more than check's 10-block sample
  ASSERT_FALSE(ds.eval.empty());
  const std::string dump = dump_blocks_jsonl(ds.train, ds.eval, c, false);
  const JsonRows back = parse_json_rows(dump, "dump.jsonl", false);
  ASSERT_EQ(back.rows.size(), ds.train.size() + ds.eval.size());
  for (size_t i = 0; i < back.rows.size(); ++i) {
    const bool train = i < ds.train.size();
    const Block& b = train ? ds.train[i] : ds.eval[i - ds.train.size()];
    const auto& r = back.rows[i].value;
    EXPECT_EQ(r["split"], train ? "train" : "eval");
    EXPECT_EQ(r["tokens"], b.size());
    EXPECT_EQ(r["trained"], b.n_trained());
    EXPECT_EQ(r["text"], c.decode(b.tokens));
    EXPECT_EQ(r["source"], "raw_text");
  }
  // With masks shown, the first token (never trained) is marked.
  const JsonRows marked = parse_json_rows(dump_blocks_jsonl(ds.train, {}, c, true), "m.jsonl", false);
  EXPECT_THAT(marked.rows[0].value["text"].get<std::string>(), ::testing::StartsWith("\u27e6<s>\u27e7"));
}

TEST(DataTools, TrainingPromptJsonAsTrainingProWritesIt) {
  const fs::path d = fresh_dir("prompt");
  DataOptions raw;
  raw.raw_text_file = "t.txt";
  EXPECT_EQ(training_prompt_json(raw).dump(), R"({"template_type":"raw_text"})");
  DataOptions chat;
  chat.jsonl_dataset = "c.jsonl";
  EXPECT_EQ(training_prompt_json(chat).dump(), R"({"template_type":"dataset"})");
  write_file_atomic(d / "fmt.json", R"({"instruction,output": "User: %instruction%\nBot: %output%",
                                        "instruction,input,output": "User: %instruction% %input%\nBot: %output%"})");
  DataOptions formatted;
  formatted.dataset = "d.json";
  formatted.format = (d / "fmt.json").string();
  EXPECT_EQ(training_prompt_json(formatted).dump(),
            R"({"template_type":"dataset","template_1":"User: %instruction%\nBot: %output%",)"
            R"("template_2":"User: %instruction% %input%\nBot: %output%"})");
}

TEST(DataTools, NeverWritesOverAnExistingFileUnlessForced) {
  const fs::path d = fresh_dir("new_file");
  write_new_file(d / "a.jsonl", "one", false);
  EXPECT_ERROR_HAS(write_new_file(d / "a.jsonl", "two", false), "a.jsonl exists (hint: --force to overwrite it)");
  EXPECT_EQ(read_file(d / "a.jsonl"), "one");
  write_new_file(d / "a.jsonl", "two", true);
  EXPECT_EQ(read_file(d / "a.jsonl"), "two");
  EXPECT_ERROR_HAS(write_new_file(d, "x", true), " is a folder (hint: name the output file)");
}
