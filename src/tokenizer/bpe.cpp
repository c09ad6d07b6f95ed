// BPE model; see bpe.h. merge_word / merge_all mirror models/bpe/model.rs and word.rs of HF
// tokenizers: a min-heap of (rank, position) candidates, stale entries skipped when the pair
// at that position no longer yields the same token.
#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tpro::tok {

// ---- FlatMap64 ------------------------------------------------------------------------------

namespace {
constexpr uint64_t kEmpty = ~uint64_t(0);
inline size_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return size_t(k);
}
}  // namespace

void FlatMap64::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{kEmpty, 0});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) insert_or_assign(s.key, s.value);
}

void FlatMap64::insert_or_assign(uint64_t key, uint64_t value) {
  if ((size_ + 1) * 2 > slots_.size()) reserve(size_ + 1);
  for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    if (slots_[i].key == key) {
      slots_[i].value = value;
      return;
    }
    if (slots_[i].key == kEmpty) {
      slots_[i] = {key, value};
      ++size_;
      return;
    }
  }
}

const uint64_t* FlatMap64::find(uint64_t key) const {
  if (slots_.empty()) return nullptr;
  for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    if (slots_[i].key == key) return &slots_[i].value;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

// ---- BpeModel -------------------------------------------------------------------------------

namespace {

uint32_t codepoint_before(std::string_view s, size_t end) {
  size_t i = end;
  while (i > 0 && (uint8_t(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return next_codepoint(s, i);
}

// Characters that some token has right before `marker` (other than the marker itself).
std::vector<uint32_t> chars_before(const VocabMap& vocab, const std::string& marker) {
  std::vector<uint32_t> out;
  size_t mi = 0;
  uint32_t m = next_codepoint(marker, mi);
  for (const auto& [piece, id] : vocab) {
    for (size_t k = piece.find(marker, 1); k != std::string::npos; k = piece.find(marker, k + 1)) {
      uint32_t c = codepoint_before(piece, k);
      if (c != m && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    }
  }
  return out;
}

}  // namespace

void BpeModel::finish_vocab() {
  char_ids_.clear();
  bmp_char_ids_.assign(0x10000, -1);
  for (const auto& [piece, id] : vocab) {
    if (piece.empty() || size_t(utf8_seq_len(uint8_t(piece[0]))) != piece.size()) continue;
    size_t i = 0;
    uint32_t cp = next_codepoint(piece, i);
    if (cp < 0x10000) {
      bmp_char_ids_[cp] = id;
    } else {
      char_ids_[cp] = id;
    }
  }
  cut_marker_.clear();
  unsafe_before_cut_.clear();
  if (continuing_subword_prefix.empty() && end_of_word_suffix.empty()) {
    for (const char* marker : {"\xE2\x96\x81", "\xC4\xA0"}) {  // ▁, Ġ
      if (vocab.count(std::string_view(marker)) == 0) continue;
      cut_marker_ = marker;
      unsafe_before_cut_ = chars_before(vocab, cut_marker_);
      break;
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab.find(std::string_view(name));
    byte_ids_[size_t(b)] = it == vocab.end() ? -1 : it->second;
  }
}

void BpeModel::add_merge(int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
  merges_.insert_or_assign((uint64_t(uint32_t(a)) << 32) | uint32_t(b), (uint64_t(rank) << 32) | uint32_t(new_id));
}

std::optional<MergeInfo> BpeModel::find_merge(int32_t a, int32_t b) const {
  const uint64_t* v = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
  if (!v) return std::nullopt;
  return MergeInfo{uint32_t(*v >> 32), int32_t(uint32_t(*v))};
}

int32_t BpeModel::char_id(std::string_view word, size_t start, size_t end) const {
  bool first = start == 0, last = end == word.size();
  bool affixed = (!first && !continuing_subword_prefix.empty()) || (last && !end_of_word_suffix.empty());
  if (!affixed) {
    size_t i = start;
    uint32_t cp = next_codepoint(word, i);
    if (cp < 0x10000) return bmp_char_ids_[cp];
    auto it = char_ids_.find(cp);
    return it == char_ids_.end() ? -1 : it->second;
  }
  std::string s;
  if (!first) s += continuing_subword_prefix;
  s.append(word.substr(start, end - start));
  if (last) s += end_of_word_suffix;
  auto it = vocab.find(std::string_view(s));
  return it == vocab.end() ? -1 : it->second;
}

void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& syms) const {
  auto add = [&syms](int32_t id, uint32_t len) {
    int32_t n = int32_t(syms.size());
    if (n > 0) syms.back().next = n;
    syms.push_back({id, n - 1, -1, len});
  };
  int32_t unk = -1;
  uint32_t unk_len = 0;
  for (size_t i = 0; i < word.size();) {
    size_t start = i, end = i + size_t(utf8_seq_len(uint8_t(word[i])));
    i = end;
    int32_t id = char_id(word, start, end);
    if (id >= 0) {
      if (unk >= 0) add(unk, unk_len), unk = -1;
      add(id, uint32_t(end - start));
      continue;
    }
    if (byte_fallback) {
      // HF looks up the affixed string's bytes; affixes are empty for byte-fallback vocabularies.
      bool all = true;
      for (size_t k = start; k < end; ++k) all = all && byte_ids_[uint8_t(word[k])] >= 0;
      if (all) {  // like HF, a pending <unk> is not flushed here
        for (size_t k = start; k < end; ++k) add(byte_ids_[uint8_t(word[k])], 1);
        continue;
      }
    }
    if (!has_unk) continue;  // HF drops characters it cannot represent
    if (unk_id < 0) fail("unknown token '", unk_token, "' is not in the vocabulary, but the text needs it");
    if (unk >= 0 && fuse_unk) {
      unk_len += uint32_t(end - start);
    } else {
      if (unk >= 0) add(unk, unk_len);
      unk = unk_id;
      unk_len = uint32_t(end - start);
    }
  }
  if (unk >= 0) add(unk, unk_len);
}

void BpeModel::merge_all(std::vector<Symbol>& syms) const {
  struct Cand {
    uint32_t rank;
    int32_t pos, new_id;
  };
  auto later = [](const Cand& a, const Cand& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
  auto push = [&later](std::vector<Cand>& heap, Cand c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end(), later);
  };
  thread_local std::vector<Cand> heap;
  heap.clear();
  for (size_t i = 0; i + 1 < syms.size(); ++i)
    if (auto m = find_merge(syms[i].id, syms[i + 1].id)) heap.push_back({m->rank, int32_t(i), m->new_id});
  std::make_heap(heap.begin(), heap.end(), later);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Cand top = heap.back();
    heap.pop_back();
    Symbol& left = syms[size_t(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    Symbol& right = syms[size_t(left.next)];
    auto cur = find_merge(left.id, right.id);
    if (!cur || cur->new_id != top.new_id) continue;  // expired candidate
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    right.len = 0;
    if (left.next >= 0) syms[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0)
      if (auto m = find_merge(syms[size_t(left.prev)].id, left.id)) push(heap, {m->rank, left.prev, m->new_id});
    if (left.next >= 0)
      if (auto m = find_merge(left.id, syms[size_t(left.next)].id)) push(heap, {m->rank, top.pos, m->new_id});
  }
}

// Where the next part of a long word starts: at a marker, after a character that is neither
// the marker nor one some token puts before it; word.size() when there is none.
size_t BpeModel::next_cut(std::string_view word, size_t from) const {
  size_t i0 = 0;
  uint32_t marker = next_codepoint(cut_marker_, i0);
  for (size_t k = word.find(cut_marker_, from + 1); k != std::string_view::npos; k = word.find(cut_marker_, k + 1)) {
    uint32_t c = codepoint_before(word, k);
    if (c != marker && std::find(unsafe_before_cut_.begin(), unsafe_before_cut_.end(), c) == unsafe_before_cut_.end())
      return k;
  }
  return word.size();
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    auto it = vocab.find(word);
    if (it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() < kMaxCachedBytes || cut_marker_.empty()) {
    merge_cached(word, out);
    return;
  }
  for (size_t start = 0; start < word.size();) {
    size_t end = next_cut(word, start);
    merge_cached(word.substr(start, end - start), out);
    start = end;
  }
}

// BPE of one word through the cache (which holds merge results only, never ignore_merges ones).
void BpeModel::merge_cached(std::string_view word, std::vector<int32_t>& out) const {
  bool cacheable = word.size() < kMaxCachedBytes;
  CacheShard& shard = cache_[StringHash{}(word) % kCacheShards];
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(word);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<Symbol> syms;
  syms.clear();
  initial_symbols(word, syms);
  merge_all(syms);
  size_t first = out.size();
  for (const Symbol& s : syms)
    if (s.len != 0) out.push_back(s.id);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.map.size() < kCacheCapacity / kCacheShards)
      shard.map.emplace(std::string(word), std::vector<int32_t>(out.begin() + std::ptrdiff_t(first), out.end()));
  }
}

void add_spm_merges(BpeModel& m, const std::vector<std::string>& pieces, const std::vector<float>& scores) {
  struct Cand {
    float score;
    int32_t a, b, id;
  };
  std::vector<Cand> cands;
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& p = pieces[id];
    for (size_t k = size_t(utf8_seq_len(uint8_t(p.empty() ? 0 : p[0]))); k < p.size();
         k += size_t(utf8_seq_len(uint8_t(p[k])))) {
      auto l = m.vocab.find(std::string_view(p).substr(0, k));
      auto r = m.vocab.find(std::string_view(p).substr(k));
      if (l != m.vocab.end() && r != m.vocab.end())
        cands.push_back({id < scores.size() ? scores[id] : 0.0f, l->second, r->second, int32_t(id)});
    }
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& x, const Cand& y) { return x.score > y.score; });
  uint32_t rank = uint32_t(m.merge_count());
  m.reserve_merges(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) {
    if (i > 0 && cands[i].score != cands[i - 1].score) ++rank;
    m.add_merge(cands[i].a, cands[i].b, rank, cands[i].id);
  }
}

}  // namespace tpro::tok
