// The precise raw text slicer (Training PRO's precise_cut) and DEMENTOR (sliding_block_cut),
// with their defects fixed: whole sentences are packed into blocks of at most cutoff_len
// tokens (BOS/EOS included) without crossing a hard cut or a file boundary; every block gets
// one overlapping block starting at the sentence nearest half a cutoff in, the last block of
// the text included; a sentence longer than a block is split at token boundaries instead of
// truncated. Reference: text-generation-webui extensions/Training_PRO/train_utils.py.
#pragma once
#include <vector>

#include "data/block.h"
#include "data/codec.h"
#include "data/options.h"
#include "data/text_files.h"

namespace tpro {

// Slices every document (in order) into blocks; adds to stats. Uses cutoff_len,
// hard_cut_string, min_chars, precize_slicing_overlap, sliding_window, add_bos_token,
// add_eos_token(+_type) and train_only_after from opt.
std::vector<Block> slice_raw_text(const std::vector<TextDoc>& docs, const TokenCodec& codec,
                                  const DataOptions& opt, DataStats& stats);

}  // namespace tpro
