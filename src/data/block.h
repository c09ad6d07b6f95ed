// The unit the data pipeline hands to the trainer: a token block with a per-token loss mask.
// mask[t] = 1 means token t is a trained target, predicted from tokens[0..t-1]; mask[0] is
// therefore meaningless and always stored as 0. Packed blocks (several documents in one row)
// also carry position ids and, per token, the index of its document's first token, so
// attention of token t covers [seg_start[t], t]. Nothing here knows about models.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tpro {

enum class BlockKind : uint8_t {
  kText,       // raw text, precise slicer
  kOverlap,    // raw text, overlapping block
  kWindow,     // raw text, DEMENTOR sliding window
  kFormatted,  // JSON row rendered through a format file
  kChat,       // chat row rendered through the chat template
  kPacked,     // several blocks packed into one row
};
const char* block_kind_name(BlockKind k);

enum class BlockSource : uint8_t { kRawText, kDataset };

struct Block {
  std::vector<int32_t> tokens;  // (n)
  std::vector<uint8_t> mask;    // (n) 1 = trained target; mask[0] = 0
  // Packed rows only (empty otherwise, meaning one document at positions 0..n-1):
  std::vector<int32_t> pos;        // (n) position id, restarting at 0 in each document
  std::vector<int32_t> seg_start;  // (n) index of the first token of this token's document

  BlockKind kind = BlockKind::kText;
  BlockSource source = BlockSource::kRawText;
  int32_t doc = -1;        // file index (raw text) or row index (dataset) it came from
  int64_t begin = 0;       // raw text: byte range [begin, end) in the normalised file text
  int64_t end = 0;
  bool ends_at_hard_cut = false;  // raw text: block ends at a hard cut or at the end of a file

  int64_t size() const { return int64_t(tokens.size()); }
  int64_t n_trained() const;
  bool packed() const { return !pos.empty(); }
};

// Counts of what each stage did; a report shows them so nothing is dropped silently.
struct DataStats {
  int64_t files = 0;               // raw text files read
  int64_t empty_files = 0;         // files with no text after normalising
  int64_t sentences = 0;           // raw text sentences (after splitting long ones)
  int64_t sentences_split = 0;     // sentences longer than a block, split at token boundaries
  int64_t text_blocks = 0;         // precise-slicer blocks kept
  int64_t overlap_blocks = 0;      // overlapping blocks kept
  int64_t window_blocks = 0;       // DEMENTOR blocks kept
  int64_t small_blocks_dropped = 0;  // blocks with <= min_chars characters
  int64_t overlap_duplicates = 0;  // overlapping blocks equal to a regular block, skipped
  int64_t rows = 0;                // dataset rows read
  int64_t bad_lines_skipped = 0;   // malformed JSONL lines skipped (skip_bad_lines)
  int64_t overlong = 0;            // rows longer than cutoff_len (before trim/eliminate)
  int64_t trimmed = 0;             // overlong rows trimmed to cutoff_len
  int64_t eliminated = 0;          // overlong rows dropped (eliminate_long_blocks)
  int64_t untrained_dropped = 0;   // rows with no trained token left (e.g. trimmed away)
  int64_t system_merged = 0;       // chat rows whose system message went into the first user turn
  int64_t longest = 0;             // longest row in tokens before trimming
  int64_t hybrid_text_used = 0, hybrid_text_total = 0;  // raw-text blocks kept / available
  int64_t hybrid_data_used = 0, hybrid_data_total = 0;  // dataset blocks kept / available
  int64_t eval_held_out = 0;       // training blocks moved to eval (eval_split)
  int64_t eval_leak_dropped = 0;   // training blocks overlapping a held-out block, dropped
};

}  // namespace tpro
