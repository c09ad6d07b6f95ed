// Pipeline stages on their own, with expectations taken from the unit tests and docs of HF
// tokenizers (split behaviors on "the-final--countdown", Metaspace, ByteFallback, Strip,
// added-token lstrip/rstrip/single_word). Several are behaviors where @lenml/tokenizers
// differs from HF, so the conformance test cannot cover them.
#include "tokenizer/pipeline.h"

#include <gtest/gtest.h>

#include "tokenizer/added_tokens.h"

namespace tpro::test {
using namespace tpro::tok;  // the tokenizer internals under test
namespace {

std::vector<std::string> run(const std::vector<PreTokenizer>& steps, const std::string& text, bool at_start = true) {
  std::vector<Piece> pieces{{text, at_start}};
  pre_tokenize(steps, pieces);
  std::vector<std::string> out;
  for (const Piece& p : pieces) out.push_back(p.text);
  return out;
}

PreTokenizer split_on(const std::string& literal, SplitBehavior b, bool invert = false) {
  PreTokenizer p;
  p.kind = PreTokenizer::Kind::Split;
  p.pattern.literal = literal;
  p.behavior = b;
  p.invert = invert;
  return p;
}

using V = std::vector<std::string>;

TEST(PreTokenizer, SplitBehaviorsFollowHfDocs) {
  const std::string s = "the-final--countdown";
  EXPECT_EQ(run({split_on("-", SplitBehavior::Removed)}, s), (V{"the", "final", "countdown"}));
  EXPECT_EQ(run({split_on("-", SplitBehavior::Isolated)}, s), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(run({split_on("-", SplitBehavior::MergedWithPrevious)}, s), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(run({split_on("-", SplitBehavior::MergedWithNext)}, s), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(run({split_on("-", SplitBehavior::Contiguous)}, s), (V{"the", "-", "final", "--", "countdown"}));
  // invert: the pattern matches what to keep.
  EXPECT_EQ(run({split_on("-", SplitBehavior::Removed, true)}, s), (V{"-", "-", "-"}));
}

TEST(PreTokenizer, RegexSplitUsesUnicodeClasses) {
  PreTokenizer p;
  p.kind = PreTokenizer::Kind::Split;
  p.pattern.regex = Regex::compile("\\p{N}{1,3}", "test");
  p.behavior = SplitBehavior::Isolated;
  EXPECT_EQ(run({p}, "a12345b٣٤"), (V{"a", "123", "45", "b", "٣٤"}));
}

TEST(PreTokenizer, MetaspaceSplitsAndPrependsLikeHf) {
  PreTokenizer m;
  m.kind = PreTokenizer::Kind::Metaspace;
  EXPECT_EQ(run({m}, "Hey   friend!"), (V{"▁Hey", "▁", "▁", "▁friend!"}));
  m.prepend_scheme = PrependScheme::First;
  EXPECT_EQ(run({m}, "how are", /*at_start=*/false), (V{"how", "▁are"}));
  EXPECT_EQ(run({m}, "how are", /*at_start=*/true), (V{"▁how", "▁are"}));
  m.prepend_scheme = PrependScheme::Never;
  m.split = false;
  EXPECT_EQ(run({m}, "a b"), (V{"a▁b"}));
}

TEST(PreTokenizer, ByteLevelMapsBytesAndOptionallyPrefixesASpace) {
  PreTokenizer b;
  b.kind = PreTokenizer::Kind::ByteLevel;
  b.add_prefix_space = false;
  EXPECT_EQ(run({b}, "Hello my friend, how is your day going?"),
            (V{"Hello", "Ġmy", "Ġfriend", ",", "Ġhow", "Ġis", "Ġyour", "Ġday", "Ġgoing", "?"}));
  EXPECT_EQ(run({b}, "Hello there       dear"), (V{"Hello", "Ġthere", "ĠĠĠĠĠĠ", "Ġdear"}));
  EXPECT_EQ(run({b}, "i⭢j"), (V{"i", "âŃ¢", "j"}));
  b.add_prefix_space = true;
  EXPECT_EQ(run({b}, "Hello"), (V{"ĠHello"}));
  EXPECT_EQ(run({b}, " Hello"), (V{"ĠHello"}));
  b.use_regex = false;
  EXPECT_EQ(run({b}, "a b"), (V{"ĠaĠb"}));
}

TEST(PreTokenizer, DigitsUseTheUnicodeNumericClass) {
  PreTokenizer d;
  d.kind = PreTokenizer::Kind::Digits;
  d.individual_digits = true;
  EXPECT_EQ(run({d}, "a12²"), (V{"a", "1", "2", "²"}));
  d.individual_digits = false;
  EXPECT_EQ(run({d}, "Call 123 please"), (V{"Call ", "123", " please"}));
}

TEST(PreTokenizer, PunctuationIsolatesUnicodeAndAsciiPunctuation) {
  PreTokenizer p;
  p.kind = PreTokenizer::Kind::Punctuation;
  EXPECT_EQ(run({p}, "Hey friend!     How are you?!?"), (V{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(run({p}, "a$b\u00bfc\u3002"), (V{"a", "$", "b", "\u00bf", "c", "\u3002"}));
  p.behavior = SplitBehavior::Contiguous;
  EXPECT_EQ(run({p}, "x!?y"), (V{"x", "!?", "y"}));
}

TEST(PreTokenizer, WhitespaceAndWhitespaceSplit) {
  PreTokenizer w;
  w.kind = PreTokenizer::Kind::Whitespace;
  EXPECT_EQ(run({w}, "Hey man!  Good?"), (V{"Hey", "man", "!", "Good", "?"}));
  w.kind = PreTokenizer::Kind::WhitespaceSplit;
  EXPECT_EQ(run({w}, "Hey man!\u3000Good?"), (V{"Hey", "man!", "Good?"}));
}

std::string dec(const std::vector<Decoder>& steps, std::vector<std::string> tokens) {
  return decode_tokens(steps, true, std::move(tokens));
}

Decoder decoder(Decoder::Kind k) {
  Decoder d;
  d.kind = k;
  return d;
}

TEST(Decoders, ByteFallbackGivesOneReplacementPerInvalidByteLikeHf) {
  // HF decoders/byte_fallback.rs tests; @lenml (TextDecoder) would give one U+FFFD for E5 8F.
  std::vector<Decoder> bf{decoder(Decoder::Kind::ByteFallback), decoder(Decoder::Kind::Fuse)};
  EXPECT_EQ(dec(bf, {"<0x61>"}), "a");
  EXPECT_EQ(dec(bf, {"<0xE5>"}), "\xEF\xBF\xBD");
  EXPECT_EQ(dec(bf, {"<0xE5>", "<0x8f>"}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(dec(bf, {"<0xE5>", "<0x8f>", "<0xab>", "a"}), "叫a");
  EXPECT_EQ(dec(bf, {"<0xE5>", "<0x8f>", "a"}),
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "a");
}

TEST(Decoders, ByteLevelReplacesPartialUtf8AsFromUtf8Lossy) {
  std::vector<Decoder> bl{decoder(Decoder::Kind::ByteLevel)};
  EXPECT_EQ(dec(bl, {"Hello", "Ġmy", "Ġfriend", ","}), "Hello my friend,");
  EXPECT_EQ(dec(bl, {"Ã"}), "\xEF\xBF\xBD");   // 0xC3 alone
  EXPECT_EQ(dec(bl, {"æĹ"}), "\xEF\xBF\xBD");  // E6 97: one maximal subpart
  EXPECT_EQ(dec(bl, {"æĹ", "¥"}), "日");
  EXPECT_EQ(dec(bl, {"<|im_start|>", "Ġx"}), "<|im_start|> x");  // outside the alphabet: raw bytes
}

TEST(Decoders, MetaspaceDropsReplacementsOfTheFirstTokenLikeHf) {
  Decoder m = decoder(Decoder::Kind::Metaspace);
  EXPECT_EQ(dec({m}, {"▁Hey", "▁friend!"}), "Hey friend!");
  EXPECT_EQ(dec({m}, {"▁▁Hey"}), "Hey");  // HF drops every ▁ of token 0; @lenml keeps one space
  m.prepend_scheme = PrependScheme::Never;
  EXPECT_EQ(dec({m}, {"▁Hey", "▁friend!"}), " Hey friend!");
}

TEST(Decoders, StripReplaceAndNoDecoder) {
  Decoder strip = decoder(Decoder::Kind::Strip);
  strip.content = " ";
  strip.start = 1;
  strip.stop = 1;
  EXPECT_EQ(dec({strip}, {"  a  ", " b", "c "}),
            " a b"
            "c");
  Decoder rep = decoder(Decoder::Kind::Replace);
  rep.pattern.literal = "▁";
  rep.content = " ";
  EXPECT_EQ(dec({rep, decoder(Decoder::Kind::Fuse)}, {"▁a", "▁▁b"}), " a  b");
  EXPECT_EQ(decode_tokens({}, false, {"a", "b"}), "a b");
}

// ---- added tokens (added_vocabulary.rs tests) ----------------------------------------------

std::vector<std::pair<std::string, int32_t>> split_all(const AddedVocab& v, const std::string& s) {
  std::vector<Segment> segs;
  v.split(s, v.raw, segs);
  std::vector<std::pair<std::string, int32_t>> out;
  for (const Segment& g : segs) out.emplace_back(s.substr(g.start, g.end - g.start), g.id);
  return out;
}

AddedVocab vocab_of(std::vector<AddedToken> tokens) {
  AddedVocab v;
  v.tokens = std::move(tokens);
  for (size_t i = 0; i < v.tokens.size(); ++i) v.raw.add(v.tokens[i].content, int32_t(i));
  return v;
}

using Segs = std::vector<std::pair<std::string, int32_t>>;

TEST(AddedTokens, LeftmostLongestMatch) {
  AddedVocab v = vocab_of({{"<a>", 0}, {"<a><b>", 1}, {"b>", 2}});
  EXPECT_EQ(split_all(v, "x<a><b>y<a>b>"), (Segs{{"x", -1}, {"<a><b>", 1}, {"y", -1}, {"<a>", 0}, {"b>", 2}}));
}

TEST(AddedTokens, LstripRstripAbsorbWhitespace) {
  AddedToken my{"my", 0};
  my.lstrip = my.rstrip = true;
  AddedVocab v = vocab_of({my, {"[CLS]", 1, true}});
  EXPECT_EQ(split_all(v, "[CLS] my name"), (Segs{{"[CLS]", 1}, {" my ", 0}, {"name", -1}}));
  AddedToken mask{"<mask>", 0};
  mask.lstrip = mask.rstrip = mask.single_word = true;
  AddedVocab m = vocab_of({mask});
  EXPECT_EQ(split_all(m, "Hi <mask> there\t<mask>\t<mask>\u2000"),
            (Segs{{"Hi", -1}, {" <mask> ", 0}, {"there", -1}, {"\t<mask>\t", 0}, {"<mask>\u2000", 0}}));
}

TEST(AddedTokens, SingleWordOnlyMatchesWholeWords) {
  AddedToken mask{"<mask>", 0};
  mask.single_word = true;
  AddedVocab v = vocab_of({mask});
  EXPECT_EQ(split_all(v, "<mask> My name <mask> A<mask> <mask>ony <mask>"),
            (Segs{{"<mask>", 0}, {" My name ", -1}, {"<mask>", 0}, {" A<mask> <mask>ony ", -1}, {"<mask>", 0}}));
  // Punctuation is not a word character; a combining mark is.
  EXPECT_EQ(split_all(v, "<mask>, <mask>- \u25cc\u0330<mask>"),
            (Segs{{"<mask>", 0}, {", ", -1}, {"<mask>", 0}, {"- \u25cc\u0330<mask>", -1}}));
}

}  // namespace
}  // namespace tpro::test
