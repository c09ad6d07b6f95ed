// end_of_turn_id: the special token a template closes an assistant reply with, found by
// rendering a probe turn with the byte-level tokenizer (specials <|bos|>, <|eos|>, <|pad|>).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/end_of_turn.h"
#include "tokenizer/tokenizer.h"

namespace tpro::test {
namespace {

Tokenizer byte_tokenizer() { return Tokenizer::from_json(byte_level_tokenizer_json(), "{}"); }

ChatRender tagged(const std::string& close) {
  return [close](const std::vector<ChatMessage>& msgs, bool gen) {
    std::string s;
    for (const ChatMessage& m : msgs) s += "[" + m.role + "] " + m.content + close + "\n";
    return gen ? s + "[assistant] " : s;
  };
}

TEST(EndOfTurn, TheSpecialTokenAfterTheReplyIsFound) {
  const Tokenizer tok = byte_tokenizer();
  EXPECT_EQ(end_of_turn_id(tagged("<|pad|>"), tok, {{"user", "Hi"}}), kByteLevelPadId);
  EXPECT_EQ(end_of_turn_id(tagged("<|eos|>"), tok, {}), kByteLevelEosId);
}

TEST(EndOfTurn, PlainTextOrARefusingTemplateGivesNone) {
  const Tokenizer tok = byte_tokenizer();
  EXPECT_EQ(end_of_turn_id(tagged(""), tok, {{"user", "Hi"}}), -1);  // "\n" is not special
  const ChatRender refuses = [](const std::vector<ChatMessage>&, bool) -> std::string {
    fail("roles must alternate user/assistant");
  };
  EXPECT_EQ(end_of_turn_id(refuses, tok, {{"user", "Hi"}}), -1);
  const ChatRender drops = [](const std::vector<ChatMessage>&, bool) { return std::string("no reply here"); };
  EXPECT_EQ(end_of_turn_id(drops, tok, {{"user", "Hi"}}), -1);
}

}  // namespace
}  // namespace tpro::test
