// Golden block lists for the precise raw text slicer and DEMENTOR, hand-checked with a
// one-token-per-byte codec: "<s>" is BOS and "</s>" EOS, every other token is one byte, so a
// block's length is its character count plus its special tokens.
#include <gtest/gtest.h>

#include <memory>

#include "data/raw_slicer.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;
using Strings = std::vector<std::string>;

namespace {

DataOptions opts(int cutoff, bool overlap = true) {
  DataOptions o;
  o.cutoff_len = cutoff;
  o.precize_slicing_overlap = overlap;
  return o;
}

std::vector<Block> slice(const std::string& text, const DataOptions& o, DataStats* stats = nullptr,
                         const TokenCodec& c = byte_codec()) {
  DataStats s;
  auto blocks = slice_raw_text({TextDoc{"t.txt", text}}, c, o, stats ? *stats : s);
  for (const Block& b : blocks) {
    EXPECT_LE(b.size(), o.cutoff_len);
    EXPECT_EQ(b.mask.size(), b.tokens.size());
  }
  return blocks;
}

// Five sentences of 9, 9, 9, 9 and 8 bytes (the trailing space belongs to the sentence).
const std::string kFive = "Aaa aaa. Bbb bbb. Ccc ccc. Ddd ddd. Eee eee.";

}  // namespace

TEST(RawSlicer, PacksWholeSentencesWithOverlapIncludingTheLastBlock) {
  // cutoff 32, BOS on: 31 text tokens per block; 9+9+9 = 27 fits, a fourth sentence does not.
  // Overlap of block 1 starts at the sentence nearest 16 tokens in (offset 18, "Ccc"); the
  // overlap of the last block ("Eee", offset 9) is kept: Training PRO drops it.
  DataStats st;
  auto blocks = slice(kFive, opts(32), &st);
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{
      "<s>Aaa aaa. Bbb bbb. Ccc ccc.",
      "<s>Ccc ccc. Ddd ddd. Eee eee.",
      "<s>Ddd ddd. Eee eee.",
      "<s>Eee eee."}));
  EXPECT_EQ(blocks[0].kind, BlockKind::kText);
  EXPECT_EQ(blocks[1].kind, BlockKind::kOverlap);
  EXPECT_EQ(blocks[3].kind, BlockKind::kOverlap);
  EXPECT_EQ(st.text_blocks, 2);
  EXPECT_EQ(st.overlap_blocks, 2);
  EXPECT_EQ(st.sentences, 5);
  EXPECT_EQ(blocks[0].begin, 0);
  EXPECT_EQ(blocks[0].end, 26);
  // Every token but the first is trained.
  EXPECT_EQ(blocks[0].mask[0], 0);
  EXPECT_EQ(blocks[0].n_trained(), blocks[0].size() - 1);
}

TEST(RawSlicer, NoOverlapAndEosOnEveryBlock) {
  DataOptions o = opts(32, false);
  o.add_eos_token = true;  // 30 text tokens per block: 27 still fits
  EXPECT_EQ(texts(slice(kFive, o), byte_codec()), (Strings{
      "<s>Aaa aaa. Bbb bbb. Ccc ccc.</s>",
      "<s>Ddd ddd. Eee eee.</s>"}));
  o.add_bos_token = false;
  EXPECT_EQ(texts(slice(kFive, o), byte_codec()), (Strings{
      "Aaa aaa. Bbb bbb. Ccc ccc.</s>",
      "Ddd ddd. Eee eee.</s>"}));
}

TEST(RawSlicer, ExactFitUsesTheWholeCutoff) {
  // 27 text bytes + BOS = 28 = cutoff: fits exactly; with EOS it no longer does.
  DataOptions o = opts(28, false);
  EXPECT_EQ(texts(slice(kFive, o), byte_codec())[0], "<s>Aaa aaa. Bbb bbb. Ccc ccc.");
  o.add_eos_token = true;
  EXPECT_EQ(texts(slice(kFive, o), byte_codec())[0], "<s>Aaa aaa. Bbb bbb.</s>");
}

TEST(RawSlicer, HardCutsAreNeverCrossedAndGetEosInHardCutMode) {
  // cutoff 24: 23 text tokens, 22 for a block that ends at the hard cut (it carries EOS).
  std::string text = "Aaa aaa. Bbb bbb. Ccc ccc.\n\n\nDdd ddd.";
  DataOptions o = opts(24);
  o.add_eos_token = true;
  o.add_eos_token_type = EosPlacement::kHardCutOnly;
  auto blocks = slice(text, o);
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{
      "<s>Aaa aaa. Bbb bbb.",          // 18 + 8 = 26 > 22: "Ccc" must wait for the next block
      "<s>Bbb bbb. Ccc ccc.</s>",      // overlap, ends at the hard cut
      "<s>Ccc ccc.</s>",
      "<s>Ddd ddd.</s>"}));            // end of file counts as a hard cut
  EXPECT_FALSE(blocks[0].ends_at_hard_cut);
  EXPECT_TRUE(blocks[1].ends_at_hard_cut);
  // Without a hard cut string the text is one section.
  o.hard_cut_string = "";
  o.precize_slicing_overlap = false;
  EXPECT_EQ(texts(slice(text, o), byte_codec()), (Strings{
      "<s>Aaa aaa. Bbb bbb.",
      "<s>Ccc ccc.\n\n\nDdd ddd.</s>"}));
}

TEST(RawSlicer, CustomHardCutStringWithEscapes) {
  DataOptions o = opts(64, false);
  o.hard_cut_string = "\\n***\\n";
  EXPECT_EQ(texts(slice("Aaa aaa.\n***\nBbb bbb. Ccc ccc.", o), byte_codec()), (Strings{
      "<s>Aaa aaa.", "<s>Bbb bbb. Ccc ccc."}));
}

TEST(RawSlicer, AbbreviationsAndInitialsStayInsideBlocks) {
  // Sentences: "Mr. Smith met Dr. Jones. " (25) and "U.S. law." (9); cutoff 30 fits one.
  auto blocks = slice("Mr. Smith met Dr. Jones. U.S. law.", opts(30, false));
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{"<s>Mr. Smith met Dr. Jones.", "<s>U.S. law."}));
}

TEST(RawSlicer, LongSentenceIsSplitNotTruncated) {
  // A 48-byte sentence (3 x cutoff 16) with 15 text tokens per block: pieces of 15, 15, 15
  // and 3 bytes; the last piece shares a block with the next sentence when it fits.
  std::string longs = std::string(46, 'x') + ". ";
  DataStats st;
  auto blocks = slice(longs + "Ok.", opts(16), &st);
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{
      "<s>" + std::string(15, 'x'),
      "<s>" + std::string(15, 'x'),
      "<s>" + std::string(15, 'x'),
      "<s>x. Ok.",
      "<s>Ok."}));  // overlap of the last block (starts at "Ok.")
  EXPECT_EQ(st.sentences_split, 1);
  EXPECT_EQ(st.sentences, 5);
}

TEST(RawSlicer, LongSentenceSplitsOnUtf8Boundaries) {
  // "é" is two bytes; a piece may never end inside it.
  std::string text;
  for (int i = 0; i < 20; ++i) text += "\xC3\xA9";
  auto blocks = slice(text, opts(8, false));  // 7 bytes per piece -> 3 characters (6 bytes)
  std::string joined;
  for (const auto& t : texts(blocks, byte_codec())) {
    EXPECT_EQ((t.size() - 3) % 2, 0u) << t;
    joined += t.substr(3);
  }
  EXPECT_EQ(joined, text);
}

TEST(RawSlicer, CjkSentenceEndsSplitSentences) {
  // Three sentences of 4 characters (12 bytes) each; cutoff 28 = BOS + two of them.
  const std::string text = "一二三。四五六！七八九？";
  DataStats st;
  auto blocks = slice(text, opts(28, false), &st);
  EXPECT_EQ(st.sentences, 3);
  EXPECT_EQ(st.sentences_split, 0);
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{"<s>一二三。四五六！", "<s>七八九？"}));
}

TEST(RawSlicer, MultiMegabyteLineWithoutSentenceEndIsSlicedInLinearWork) {
  // A 4 MB line with no sentence end. Every piece used to re-encode the rest of the sentence
  // (about 20 times, bisecting over it): some 10^12 bytes encoded here, hours of work. Now
  // each piece encodes a window of a few times its own size: the bytes handed to the codec
  // are bounded by a small multiple of the text.
  std::string text;
  const char* words[] = {"alpha ", "beta ", "gamma ", "delta ", "\xC3\xA9t\xC3\xA9 ", "x "};
  for (size_t i = 0; text.size() < (4u << 20); ++i) text += words[(i * 7) % 6];
  auto encoded = std::make_shared<int64_t>(0);
  TokenCodec c = byte_codec();
  c.encode = [inner = c.encode, encoded](std::string_view s) {
    *encoded += int64_t(s.size());
    return inner(s);
  };
  DataStats st;
  auto blocks = slice(text, opts(512, false), &st, c);
  EXPECT_EQ(st.sentences_split, 1);
  EXPECT_LE(*encoded, 40 * int64_t(text.size())) << "encoding work grows faster than the text";
  // The pieces cover the text in order, at most 511 bytes each; only the spaces at the cuts
  // (stripped from the blocks) lie between them.
  ASSERT_GE(blocks.size(), text.size() / 511);
  size_t at = 0;
  for (const Block& blk : blocks) {
    ASSERT_EQ(blk.size(), int64_t(blk.end - blk.begin) + 1);
    ASSERT_LE(blk.size(), 512);
    while (at < size_t(blk.begin) && text[at] == ' ') ++at;
    ASSERT_EQ(at, size_t(blk.begin));
    at = size_t(blk.end);
  }
  while (at < text.size() && text[at] == ' ') ++at;
  EXPECT_EQ(at, text.size());
}

TEST(RawSlicer, MinCharsDropsSmallBlocks) {
  DataOptions o = opts(32);
  o.min_chars = 8;  // "Eee eee." has exactly 8 characters: dropped (<= min_chars)
  DataStats st;
  auto blocks = slice(kFive, o, &st);
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{
      "<s>Aaa aaa. Bbb bbb. Ccc ccc.",
      "<s>Ccc ccc. Ddd ddd. Eee eee.",
      "<s>Ddd ddd. Eee eee."}));
  EXPECT_EQ(st.small_blocks_dropped, 1);
  // Characters, not bytes: "éé." is 3 characters (5 bytes).
  o.min_chars = 3;
  EXPECT_TRUE(slice("\xC3\xA9\xC3\xA9.", o).empty());
  o.min_chars = 2;
  EXPECT_EQ(slice("\xC3\xA9\xC3\xA9.", o).size(), 1u);
}

TEST(RawSlicer, OverlapNeverDuplicatesARegularBlock) {
  // Regular blocks "A. A." + "A. A."; the first overlap would repeat them exactly.
  std::string text = "Aaa aaa. Aaa aaa. Aaa aaa. Aaa aaa.";
  DataStats st;
  auto blocks = slice(text, opts(20), &st);
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{
      "<s>Aaa aaa. Aaa aaa.", "<s>Aaa aaa. Aaa aaa.", "<s>Aaa aaa."}));
  EXPECT_EQ(st.overlap_duplicates, 1);
  EXPECT_EQ(st.text_blocks, 2);
}

TEST(RawSlicer, DementorSlidesOneSentenceWhileTheEndAdvances) {
  DataOptions o = opts(32);
  o.sliding_window = true;
  auto blocks = slice(kFive, o);
  EXPECT_EQ(texts(blocks, byte_codec()), (Strings{
      "<s>Aaa aaa. Bbb bbb. Ccc ccc.",
      "<s>Bbb bbb. Ccc ccc. Ddd ddd.",
      "<s>Ccc ccc. Ddd ddd. Eee eee."}));  // reaches the end: no shorter suffix windows
  for (const Block& b : blocks) EXPECT_EQ(b.kind, BlockKind::kWindow);
  // Windows stay within hard cuts.
  std::string text = "Aaa aaa. Bbb bbb. Ccc ccc. Ddd ddd.\n\n\nEee eee. Fff fff.";
  EXPECT_EQ(texts(slice(text, o), byte_codec()), (Strings{
      "<s>Aaa aaa. Bbb bbb. Ccc ccc.",
      "<s>Bbb bbb. Ccc ccc. Ddd ddd.",
      "<s>Eee eee. Fff fff."}));
}

TEST(RawSlicer, TrainOnlyAfterMasksTheStart) {
  DataOptions o = opts(64, false);
  o.train_only_after = "A:";
  auto blocks = slice("Q: hi? A: yo.", o);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(show(blocks[0], byte_codec()), "<s>[Q: hi? A:] yo.");
}

TEST(RawSlicer, CutoffTooSmallIsAnError) {
  DataOptions o = opts(2, false);
  o.add_eos_token = true;
  EXPECT_ERROR_HAS(slice("Hi.", o), "cutoff_len 2 leaves no room");
}

TEST(RawSlicer, SpecialTokensAreNeverDoubled) {
  // The text itself starts with BOS and ends with EOS (the byte codec matches <s> and </s>).
  DataOptions o = opts(64, false);
  o.add_eos_token = true;
  auto blocks = slice("<s>Hello there.</s>", o);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].tokens.front(), kByteBos);
  EXPECT_NE(blocks[0].tokens[1], kByteBos);
  EXPECT_EQ(blocks[0].tokens.back(), kByteEos);
  EXPECT_NE(blocks[0].tokens[blocks[0].tokens.size() - 2], kByteEos);
  EXPECT_EQ(blocks[0].size(), 1 + 12 + 1);
  // add_bos_token off removes a BOS the text brought.
  o.add_bos_token = false;
  EXPECT_EQ(texts(slice("<s><s>Hello there.", o), byte_codec()), (Strings{"Hello there.</s>"}));
}
