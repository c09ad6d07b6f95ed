// Sentence and hard-cut splitting: delimiters, abbreviations, initials, whitespace rules.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "data/options.h"
#include "data/sentences.h"

using namespace tpro;

namespace {
std::vector<std::string> sentences(std::string_view text) {
  std::vector<std::string> out;
  for (const Span& s : split_sentences(text, {0, text.size()})) out.emplace_back(text.substr(s.begin, s.size()));
  return out;
}
}  // namespace

TEST(Sentences, DelimitersKeepPunctuationAndTrailingWhitespace) {
  EXPECT_EQ(sentences("One. Two? Three! Four... Five"),
            (std::vector<std::string>{"One. ", "Two? ", "Three! ", "Four... ", "Five"}));
  EXPECT_EQ(sentences("One.\nTwo.\n\n  Three"), (std::vector<std::string>{"One.\n", "Two.\n\n  ", "Three"}));
  EXPECT_EQ(sentences(" \n  Lead. Trail.  \n"), (std::vector<std::string>{"Lead. ", "Trail.  \n"}));
}

TEST(Sentences, NoSplitWithoutFollowingSpace) {
  EXPECT_EQ(sentences("Pi is 3.14 today. e.g.done"), (std::vector<std::string>{"Pi is 3.14 today. ", "e.g.done"}));
  EXPECT_EQ(sentences("Tab.\tafter"), (std::vector<std::string>{"Tab.\tafter"}));
}

TEST(Sentences, AbbreviationsDoNotEndSentences) {
  EXPECT_EQ(sentences("Mr. Smith met Dr. Jones and Mrs. Ms. Prof. Jr. here. Next"),
            (std::vector<std::string>{"Mr. Smith met Dr. Jones and Mrs. Ms. Prof. Jr. here. ", "Next"}));
  EXPECT_EQ(sentences("Acme Inc. and Foo Corp. and Bar Co. and Baz Ltd. sued. Then"),
            (std::vector<std::string>{"Acme Inc. and Foo Corp. and Bar Co. and Baz Ltd. sued. ", "Then"}));
  EXPECT_EQ(sentences("A Ph.D. from the Univ. of X on Main St. near Elm Ave. won. Yes"),
            (std::vector<std::string>{"A Ph.D. from the Univ. of X on Main St. near Elm Ave. won. ", "Yes"}));
  EXPECT_EQ(sentences("(Capt. Hook) and \"Gen. Lee\" and Col. Mustard, Gov. X, Est. 1900, Dept. Y, Blvd. Zed. End"),
            (std::vector<std::string>{
                "(Capt. Hook) and \"Gen. Lee\" and Col. Mustard, Gov. X, Est. 1900, Dept. Y, Blvd. Zed. ", "End"}));
  // Only whole words: "Hmr." is not "Mr.", a line break after an abbreviation does not split.
  EXPECT_EQ(sentences("Say hmr. Then Mr.\nSmith came."), (std::vector<std::string>{"Say hmr. ", "Then Mr.\nSmith came."}));
}

TEST(Sentences, SingleCapitalInitialsDoNotEndSentences) {
  EXPECT_EQ(sentences("The U.S. law and J. R. R. Tolkien agree. Next"),
            (std::vector<std::string>{"The U.S. law and J. R. R. Tolkien agree. ", "Next"}));
  // A word ending in a capital is not an initial.
  EXPECT_EQ(sentences("Made in the USA. Next"), (std::vector<std::string>{"Made in the USA. ", "Next"}));
  EXPECT_EQ(sentences("A. Start"), (std::vector<std::string>{"A. Start"}));
}

TEST(Sentences, BlankSectionHasNoSentences) {
  EXPECT_TRUE(sentences("").empty());
  EXPECT_TRUE(sentences(" \n\t ").empty());
}

TEST(Sections, SplitAtHardCut) {
  std::string text = "a\n\n\nb\n\n\n\nc";
  auto secs = split_sections(text, "\n\n\n");
  ASSERT_EQ(secs.size(), 3u);
  EXPECT_EQ(secs[0], (Span{0, 1}));
  EXPECT_EQ(secs[1], (Span{4, 5}));
  EXPECT_EQ(secs[2], (Span{8, 10}));  // "\nc": the fourth newline starts the next section
  EXPECT_EQ(split_sections(text, "").size(), 1u);
  EXPECT_EQ(split_sections("\n\n\n", "\n\n\n").size(), 2u);  // two empty sections
}

TEST(Options, DecodeEscapes) {
  EXPECT_EQ(decode_escapes("\\n\\n\\n"), "\n\n\n");
  EXPECT_EQ(decode_escapes("a\\tb\\\\n\\r\\q"), "a\tb\\n\r\\q");
  EXPECT_EQ(decode_escapes("<END>"), "<END>");
}

TEST(Options, EosPlacementNames) {
  EXPECT_EQ(parse_eos_placement("Every Block"), EosPlacement::kEveryBlock);
  EXPECT_EQ(parse_eos_placement("hard_cut_only"), EosPlacement::kHardCutOnly);
  EXPECT_EQ(parse_eos_placement("Hard Cut Blocks Only"), EosPlacement::kHardCutOnly);
  EXPECT_ERROR_HAS(parse_eos_placement("sometimes"), "unknown value 'sometimes'");
}

TEST(Sentences, CjkSentenceEndsNeedNoSpace) {
  // 。！？ end a sentence with nothing after them; ASCII '.' still needs a space.
  EXPECT_EQ(sentences("今天很好。明天下雨！你去吗？好"),
            (std::vector<std::string>{"今天很好。", "明天下雨！", "你去吗？", "好"}));
  EXPECT_EQ(sentences("日本語です｡次です"), (std::vector<std::string>{"日本語です｡", "次です"}));
  // Closing quotes/brackets and repeated marks stay with the sentence; whitespace after it too.
  EXPECT_EQ(sentences("他说：「走吧。」然后走了？！ 真的"),
            (std::vector<std::string>{"他说：「走吧。」", "然后走了？！ ", "真的"}));
  EXPECT_EQ(sentences("“好。”他说。"), (std::vector<std::string>{"“好。”", "他说。"}));
  // The ideographic comma and the ellipsis do not end a sentence.
  EXPECT_EQ(sentences("一、二……三。"), (std::vector<std::string>{"一、二……三。"}));
}
