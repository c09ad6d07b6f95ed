// Best-fit-decreasing sample packing with per-document positions; see packing.h.
#include "data/packing.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"

namespace tpro {

double PackStats::fill() const {
  return rows == 0 || pack_len == 0 ? 0.0 : double(tokens) / (double(rows) * pack_len);
}

namespace {

Block join(const std::vector<Block>& blocks, const std::vector<size_t>& members) {
  if (members.size() == 1) return blocks[members[0]];
  Block row;
  row.kind = BlockKind::kPacked;
  row.source = blocks[members[0]].source;
  for (size_t m : members) {
    const Block& b = blocks[m];
    int32_t start = int32_t(row.tokens.size());
    row.tokens.insert(row.tokens.end(), b.tokens.begin(), b.tokens.end());
    row.mask.insert(row.mask.end(), b.mask.begin(), b.mask.end());
    row.mask[size_t(start)] = 0;  // would be predicted from the previous document
    for (int64_t t = 0; t < b.size(); ++t) {
      row.pos.push_back(b.packed() ? b.pos[size_t(t)] : int32_t(t));
      row.seg_start.push_back(start + (b.packed() ? b.seg_start[size_t(t)] : 0));
    }
  }
  return row;
}

}  // namespace

std::vector<Block> pack_blocks(const std::vector<Block>& blocks, int pack_len, PackStats* stats) {
  std::vector<size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return blocks[a].size() > blocks[b].size(); });
  std::vector<std::vector<size_t>> bins;
  std::multimap<int64_t, size_t> room;  // free tokens -> bin
  for (size_t i : order) {
    int64_t n = blocks[i].size();
    if (n > pack_len) fail("cannot pack a block of ", n, " tokens into rows of ", pack_len);
    auto it = room.lower_bound(n);  // the fullest bin that still fits
    size_t bin;
    int64_t free_after;
    if (it == room.end()) {
      bin = bins.size();
      bins.emplace_back();
      free_after = pack_len - n;
    } else {
      bin = it->second;
      free_after = it->first - n;
      room.erase(it);
    }
    bins[bin].push_back(i);
    if (free_after > 0) room.emplace(free_after, bin);
  }
  for (auto& b : bins) std::sort(b.begin(), b.end());
  std::sort(bins.begin(), bins.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
  std::vector<Block> rows;
  rows.reserve(bins.size());
  int64_t tokens = 0;
  for (const auto& b : bins) {
    rows.push_back(join(blocks, b));
    tokens += rows.back().size();
  }
  if (stats) *stats = PackStats{int64_t(blocks.size()), int64_t(rows.size()), tokens, pack_len};
  return rows;
}

}  // namespace tpro
