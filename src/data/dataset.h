// Builds the blocks a training run uses from DataOptions: raw text (precise slicer/DEMENTOR),
// formatted JSON rows (format file), chat rows (chat template), or raw text + rows together
// (hybrid, each share taken exactly); over-long rows trimmed or eliminated; an evaluation set
// from a separate file or a held-out percentage. Every drop is counted in DataStats.
// Batching is batcher.h's job; the dataset check report is check.h's.
#pragma once
#include <vector>

#include "data/block.h"
#include "data/chat.h"
#include "data/codec.h"
#include "data/options.h"

namespace tpro {

class Tokenizer;

struct Dataset {
  std::vector<Block> train;
  std::vector<Block> eval;  // empty when no evaluation set was asked for
  DataStats stats;
};

// What the pipeline dropped, trimmed or changed, one line each ("3 rows longer than cutoff_len
// 256 were trimmed", "2 bad JSONL lines skipped", ...), for the trainer to print and log.
std::vector<std::string> dataset_notes(const DataStats& s, int64_t cutoff_len);

// `chat` renders chat rows; an empty function makes chat rows an error. Throws Error for bad
// options, bad inputs, and when no training block is left.
Dataset build_dataset(const DataOptions& opt, const TokenCodec& codec, const ChatRender& chat);

// The same with the tokenizer's codec and chat template (opt.chat_template_file overrides the
// template; the tokenizer must outlive nothing here: blocks hold token ids only).
Dataset build_dataset(const DataOptions& opt, const Tokenizer& tok);

// Checks option values and combinations; throws Error naming the option. build_dataset calls it.
void validate_data_options(const DataOptions& opt);

}  // namespace tpro
