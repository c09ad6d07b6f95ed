// Every knob of the data pipeline in one plain struct. Field names follow Training PRO
// (text-generation-webui's training_PRO extension) where it has them, so the lead can map its
// CLI/YAML/JSON schema and training_parameters.json onto this one-to-one.
// No parsing of flags here: the CLI owns that. docs/DATASETS.md explains every field.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/cancel.h"

namespace tpro {

// Where EOS goes on raw-text blocks (Training PRO "EOS placement (Text file)").
enum class EosPlacement {
  kEveryBlock,   // "Every Block"
  kHardCutOnly,  // "Hard Cut Blocks Only": blocks that end at a hard cut or at the end of a file
};

// Accepts Training PRO's labels ("Every Block", "Hard Cut Blocks Only") and snake_case
// ("every_block", "hard_cut_only"); throws Error naming the accepted values otherwise.
EosPlacement parse_eos_placement(std::string_view s);
const char* eos_placement_name(EosPlacement p);  // "every_block" / "hard_cut_only"

// Training PRO issue #15: length-grouped batches first, then the original order.
// Active when group_by_length is on and the switch is set; it ends the length phase. A pairing
// phase (consecutive rows kept side by side, pairs still grouped by length) may sit between
// the two. Held as the user states it (length_to_sequential, length_to_sequential_at).
enum class LengthSwitch { kNever, kEpoch, kStep, kLoss };  // "never", "epoch", "step", "loss"
const char* length_switch_name(LengthSwitch s);

struct LengthSchedule {
  LengthSwitch to_sequential = LengthSwitch::kNever;  // what ends the length-grouped phase
  double at = 0.0;         // the epoch, step or loss at which it ends
  int pairing_epochs = 0;  // epochs of pairing before sequential; 0 = straight to sequential
  // kLoss only: the low end of the loss range [loss_min, at] that ends the phase; 0 = none
  // (any loss <= at switches).
  double loss_min = 0.0;
  // Epochs [0, n) length-grouped; 0 = no epoch switch (a fractional epoch rounds down).
  int switch_epoch() const {
    return to_sequential == LengthSwitch::kEpoch && at >= 1 ? int(std::min(at, 1e9)) : 0;
  }
  // Switch once observe_loss reports step >= this; 0 = off.
  int64_t switch_step() const {
    return to_sequential == LengthSwitch::kStep && at >= 1 ? int64_t(std::min(at, 1e18)) : 0;
  }
  // Switch once observe_loss reports a loss within [switch_loss_min(), switch_loss()]; 0 = off.
  double switch_loss() const { return to_sequential == LengthSwitch::kLoss && at > 0 ? at : 0.0; }
  double switch_loss_min() const { return switch_loss() > 0.0 ? loss_min : 0.0; }
  bool active(bool group_by_length) const {
    return group_by_length && (switch_epoch() > 0 || switch_step() > 0 || switch_loss() > 0.0);
  }
  bool operator==(const LengthSchedule&) const = default;
};

struct DataOptions {
  // --- sources (any mix; raw text + dataset together needs hybrid_training) ---
  std::string raw_text_file;       // a .txt file or a folder of .txt files (natural sort)
  std::string dataset;             // .json (array) or .jsonl: formatted rows or chat rows
  std::string format;              // format file for dataset's rows; empty = chat rows
  std::string jsonl_dataset;       // .jsonl chat rows (Training PRO's own key); used when dataset is empty
  std::string chat_template_file;  // Jinja file overriding the tokenizer's chat template
  // Extra variables for the chat template ({"enable_thinking": false}), as transformers'
  // apply_chat_template(**kwargs): a flat object of scalars, checked by check_template_kwargs.
  nlohmann::json chat_template_kwargs = nlohmann::json::object();
  std::string eval_dataset;        // separate evaluation source (.txt/folder or .json/.jsonl)
  std::string jsonl_eval_dataset;  // evaluation chat rows; used when eval_dataset is empty
  double eval_split = 0.0;         // percent of training blocks held out when no eval_dataset

  // --- hybrid: raw text and instruct data together, each share taken exactly ---
  bool hybrid_training = false;
  double hybrid_text_ratio = 100.0;  // percent of the raw-text blocks used
  double hybrid_data_ratio = 100.0;  // percent of the dataset rows used

  // --- raw text slicing ---
  int cutoff_len = 256;                     // longest block in tokens, BOS/EOS included
  std::string hard_cut_string = "\\n\\n\\n";  // escapes (\n \r \t \\) decoded; "" = none
  int min_chars = 0;                        // drop blocks with <= this many characters
  bool precize_slicing_overlap = true;      // add one overlapping block per block
  bool sliding_window = false;              // DEMENTOR: a window sliding one sentence at a time

  // --- special tokens and loss masks ---
  bool add_bos_token = true;  // prepend BOS when the tokenizer has one (never doubled)
  bool add_eos_token = false;  // append EOS (never doubled); needs a tokenizer EOS
  EosPlacement add_eos_token_type = EosPlacement::kEveryBlock;  // raw text only
  std::string train_only_after;  // formatted/raw rows: train only on text after this string
  bool train_on_inputs = false;  // chat: train every token, not just assistant turns
  bool eliminate_long_blocks = false;  // rows longer than cutoff_len: drop instead of trim
  bool skip_bad_lines = false;         // malformed JSONL lines: skip and count, not fail

  // --- batching ---
  bool shuffle = true;            // shuffle rows each epoch (off: original order)
  bool group_by_length = false;   // batches of similar length (real grouping, see batcher.h)
  LengthSchedule length_schedule;  // issue #15 schedule (needs group_by_length)
  bool pack_samples = false;      // pack short rows into cutoff_len rows, attention per doc
  int pad_to_multiple = 1;        // round each micro-batch's T up to a multiple (e.g. 8)

  uint64_t seed = 42;  // hybrid subsets, eval split, shuffling
  // A stop request while the dataset is built (polled per document and per row); null = none.
  const CancelFlag* cancel = nullptr;

  // The rows trained on and how they render: dataset with format (none = chat rows), else
  // jsonl_dataset as chat rows; the evaluation source likewise.
  const std::string& rows_path() const { return dataset.empty() ? jsonl_dataset : dataset; }
  std::string rows_format() const { return dataset.empty() ? std::string() : format; }
  const std::string& eval_path() const { return eval_dataset.empty() ? jsonl_eval_dataset : eval_dataset; }
  bool operator==(const DataOptions&) const = default;
};

// Decodes \n, \r, \t and \\ in a user-typed string (Training PRO decodes only \n); any other
// backslash sequence is kept as written.
std::string decode_escapes(std::string_view s);

}  // namespace tpro
