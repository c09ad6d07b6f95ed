// Sample packing: short blocks are packed into rows of at most pack_len tokens (best-fit
// decreasing, so rows come out nearly full) while attention stays inside each document:
// a packed row carries position ids that restart at 0 per document and, per token, the index
// of its document's first token. The first token of every packed document is untrained, since
// predicting it would need the previous document. Single-document rows are left unchanged.
#pragma once
#include <vector>

#include "data/block.h"

namespace tpro {

struct PackStats {
  int64_t blocks = 0;  // blocks in
  int64_t rows = 0;    // rows out
  int64_t tokens = 0;  // tokens (same in and out)
  int pack_len = 0;
  double fill() const;  // tokens / (rows * pack_len)
};

// Deterministic: the same blocks give the same rows. Throws Error if a block is longer than
// pack_len. Within a row documents keep their original order; rows are ordered by their
// first document.
std::vector<Block> pack_blocks(const std::vector<Block>& blocks, int pack_len, PackStats* stats = nullptr);

}  // namespace tpro
