// The dataset check behind `tpro check` (Training PRO's "Verify Dataset/Text File and suggest
// data entries"): builds the dataset exactly as training would, then reports blocks, tokens,
// the longest block and a suggested cutoff, rows that would be trimmed or eliminated, steps
// per epoch, suggested warmup and checkpoint frequency (Training PRO's formulas), and a
// warning when gradient accumulation exceeds the data. Also writes a sample of decoded
// blocks with their loss masks shown. No CLI code: the command wires its flags to this.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/block.h"
#include "data/chat.h"
#include "data/codec.h"
#include "data/options.h"

namespace tpro {

class Tokenizer;

struct CheckReport {
  // Inputs echoed.
  int cutoff_len = 0, micro_batch_size = 0, grad_accumulation = 0;
  double epochs = 0;
  bool eliminate_long_blocks = false;

  DataStats stats;
  int64_t blocks = 0;          // training blocks
  int64_t raw_text_blocks = 0, dataset_blocks = 0;
  int64_t eval_blocks = 0;
  int64_t tokens = 0, trained_tokens = 0;
  int64_t longest = 0;           // longest block in tokens, before any trimming
  int64_t suggested_cutoff = 0;  // longest rounded up to a multiple of 32
  int64_t over_cutoff = 0;       // rows longer than cutoff_len (trimmed or eliminated)
  int64_t rows = 0;              // rows the batcher sees (after packing)
  double pack_fill = 0;          // tokens / (rows * cutoff_len) when packing

  // Training PRO's step arithmetic (its "steps" are micro-batches).
  int64_t total_steps = 0;        // ceil(rows / batch) * epochs
  int64_t steps_per_epoch = 0;    // ceil(total_steps / epochs)
  int64_t warmup_suggested = 0;   // min(ceil(100/GA)*GA, ceil(total/10), steps_per_epoch)
  int64_t save_every_min = 0, save_every_max = 0;  // ceil(total/10) .. ceil(total/5)
  // Optimizer steps (what tpro's trainer counts).
  int effective_grad_accumulation = 0;  // what the trainer will use
  int64_t optimizer_steps_per_epoch = 0;
  bool grad_accumulation_too_high = false;

  std::vector<std::string> warnings;
  std::vector<Block> sample;  // blocks for write_check_sample (a few of each kind, in order)
};

CheckReport check_dataset(const DataOptions& opt, const TokenCodec& codec, const ChatRender& chat,
                          int micro_batch_size, int grad_accumulation, double epochs);
CheckReport check_dataset(const DataOptions& opt, const Tokenizer& tok, int micro_batch_size,
                          int grad_accumulation, double epochs);

// Human-readable report, one fact per line.
std::string format_check_report(const CheckReport& r);

// Writes the sample blocks decoded, untrained tokens between "⟦" and "⟧" (atomic write).
void write_check_sample(const std::filesystem::path& path, const CheckReport& r, const TokenCodec& codec);
void write_check_sample(const std::filesystem::path& path, const CheckReport& r, const Tokenizer& tok);

// The sample text itself (what write_check_sample writes).
std::string render_check_sample(const CheckReport& r, const TokenCodec& codec);

// A block's tokens decoded (special tokens kept); with mark_untrained, the untrained tokens
// between "⟦" and "⟧" (runs of equal mask decoded together so characters stay whole).
std::string decode_block(const Block& b, const TokenCodec& codec, bool mark_untrained);

}  // namespace tpro
