// The BPE model of HF tokenizers (models/bpe): a word's characters become symbols (unknown ones
// become <0xXX> byte tokens or <unk>), then the lowest-ranked mergeable pair is merged, leftmost
// first, until none is left. SentencePiece vocabularies (GGUF "llama") use the same engine with
// merges derived from token scores (spm_merges), which reproduces llama.cpp's score order.
// Results per word are cached, so the typical repeated word costs one hash lookup.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tpro::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Open-addressing map from a 64-bit key to a 64-bit value; keys must not be ~0. Key and value
// share a slot so a lookup costs one cache miss (merge lookups dominate cold BPE).
class FlatMap64 {
 public:
  void reserve(size_t n);
  void insert_or_assign(uint64_t key, uint64_t value);
  const uint64_t* find(uint64_t key) const;
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key, value;
  };
  std::vector<Slot> slots_;
  size_t size_ = 0, mask_ = 0;
};

struct MergeInfo {
  uint32_t rank;
  int32_t new_id;
};

class BpeModel {
 public:
  VocabMap vocab;  // model vocabulary (added tokens live outside it)
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  int32_t unk_id = -1;    // -1: unknown characters are dropped (or unk_token is missing)
  std::string unk_token;  // named in the error when unk_id is -1 but an unknown is needed
  bool has_unk = false;
  std::string continuing_subword_prefix, end_of_word_suffix;

  // Call after vocab and flags are set and before merges are added.
  void finish_vocab();
  // Merges in rank order; a repeated pair keeps its last rank, as HF's map building does.
  void add_merge(int32_t a, int32_t b, uint32_t rank, int32_t new_id);
  void reserve_merges(size_t n) { merges_.reserve(merges_.size() + n); }
  size_t merge_count() const { return merges_.size(); }

  // Appends the ids of one pre-token. Thread-safe.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t len;  // bytes covered; 0 once merged away
  };
  std::optional<MergeInfo> find_merge(int32_t a, int32_t b) const;
  void initial_symbols(std::string_view word, std::vector<Symbol>& syms) const;
  void merge_all(std::vector<Symbol>& syms) const;
  void merge_cached(std::string_view word, std::vector<int32_t>& out) const;
  size_t next_cut(std::string_view word, size_t from) const;
  int32_t char_id(std::string_view word, size_t start, size_t end) const;

  FlatMap64 merges_;  // (a << 32 | b) -> (rank << 32 | new_id)
  // Long words (SentencePiece text without a pre-tokenizer is one word) are cut before a
  // marker ("▁", or "Ġ") wherever no vocabulary token spans the cut: merges only build
  // vocabulary tokens, so BPE of the whole equals BPE of the parts, and the parts are cached.
  std::string cut_marker_;
  std::vector<uint32_t> unsafe_before_cut_;         // characters some token has right before the marker
  std::vector<int32_t> bmp_char_ids_;               // single-character tokens below U+10000, or -1
  std::unordered_map<uint32_t, int32_t> char_ids_;  // the other single-character tokens
  std::array<int32_t, 256> byte_ids_{};             // "<0xXX>" tokens, or -1

  static constexpr size_t kCacheShards = 16, kCacheCapacity = 1 << 17, kMaxCachedBytes = 256;
  struct CacheShard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<CacheShard, kCacheShards> cache_;
};

// Merges equivalent to SentencePiece BPE over scored pieces: every split of a token into two
// tokens is a merge, ranked by the token's score (higher first; equal scores share a rank, so
// the leftmost pair wins, as in llama.cpp). Ranks continue after the model's existing merges.
void add_spm_merges(BpeModel& m, const std::vector<std::string>& pieces, const std::vector<float>& scores);

}  // namespace tpro::tok
