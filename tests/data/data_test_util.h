// Helpers for the data tests: a one-token-per-byte codec (ids 0..255 are bytes, 256 = BOS
// "<s>", 257 = EOS "</s>", matched in text like a real tokenizer's special tokens) so golden
// block lists can be checked by counting characters, and a scratch folder per test. Errors:
// EXPECT_ERROR_HAS and error_of from common/test_util.h.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "core/file.h"
#include "data/block.h"
#include "data/codec.h"

namespace tpro::test {

constexpr int32_t kByteBos = 256, kByteEos = 257;

inline TokenCodec byte_codec(bool with_bos = true, bool with_eos = true) {
  TokenCodec c;
  c.encode = [](std::string_view s) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < s.size();) {
      if (s.substr(i, 3) == "<s>") ids.push_back(kByteBos), i += 3;
      else if (s.substr(i, 4) == "</s>") ids.push_back(kByteEos), i += 4;
      else ids.push_back((unsigned char)s[i++]);
    }
    return ids;
  };
  c.decode = [](std::span<const int32_t> ids) {
    std::string s;
    for (int32_t id : ids) s += id == kByteBos ? "<s>" : id == kByteEos ? "</s>" : std::string(1, char(id));
    return s;
  };
  c.bos = with_bos ? kByteBos : -1;
  c.eos = with_eos ? kByteEos : -1;
  return c;
}

// Decoded text of a block with untrained tokens (other than position 0) wrapped in [ ].
inline std::string show(const Block& b, const TokenCodec& c) {
  std::string out;
  bool open = false;
  for (size_t t = 0; t < b.tokens.size(); ++t) {
    bool masked = t > 0 && !b.mask[t];
    if (masked != open) out += masked ? "[" : "]", open = masked;
    out += c.decode(std::span<const int32_t>(&b.tokens[t], 1));
  }
  if (open) out += "]";
  return out;
}

inline std::vector<std::string> texts(const std::vector<Block>& blocks, const TokenCodec& c) {
  std::vector<std::string> out;
  for (const Block& b : blocks) out.push_back(c.decode(b.tokens));
  return out;
}

class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(TPRO_BINARY_DIR) / "test_scratch" / "data" /
            (std::string(info->test_suite_name()) + "." + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  std::filesystem::path file(const std::string& name, std::string_view content) const {
    auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    write_file_atomic(p, content);
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tpro::test
