// Turns blocks into micro-batches for the trainer: B rows padded to the longest row of the
// batch (optionally rounded up to a multiple, e.g. 8), padding masked. Row order per epoch:
// shuffled, original, grouped by length (really: Training PRO pads every row to cutoff_len,
// so its group_by_length changes nothing), or Training PRO issue #15's schedule (length-
// grouped, optionally a pairing phase, then the original order; switched at an epoch, a step
// or a loss the trainer reports). Optional sample packing. The whole state (epoch, position,
// this epoch's order, RNG, phase) round-trips through JSON so a resumed run is bit-exact.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/batch.h"
#include "core/rng.h"
#include "data/block.h"
#include "data/options.h"

namespace tpro {

// One micro-batch. Legend: B rows, T tokens per row (the longest row, rounded up).
struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> tokens;     // (B, T) padding is pad_id
  std::vector<int32_t> pos;        // (B, T) position ids, restarting at each packed document
  std::vector<int32_t> seg_start;  // (B, T) row index of the first token of this token's document:
                                   //        attention of token t covers [seg_start[t], t]; padding
                                   //        tokens point at themselves
  std::vector<uint8_t> mask;       // (B, T) 1 = trained target; column 0 and padding are 0
  int64_t n_trained = 0;           // number of ones in mask
  std::vector<int32_t> rows;       // (B) indices into Batcher::rows()
  int64_t epoch = 0;               // 0-based epoch this batch belongs to
  int64_t index_in_epoch = 0;      // 0-based micro-batch index within the epoch
  bool last_in_epoch = false;      // close the gradient-accumulation group here

  BatchView view() const { return {B, T, tokens.data(), pos.data(), seg_start.data(), mask.data()}; }
};

struct BatcherConfig {
  int micro_batch_size = 4;  // Training PRO "True Batch Size"
  int32_t pad_id = 0;        // any valid token id: padding is masked
  int pad_to_multiple = 1;   // round T up to a multiple of this
  int max_len = 0;           // rounding never pushes T past max(longest row, max_len); 0 = no cap
  bool shuffle = true;
  bool group_by_length = false;
  LengthSchedule length_schedule;
  bool pack = false;  // pack rows into max_len-token rows (needs max_len)
  uint64_t seed = 42;

  // The batching fields of DataOptions (max_len = cutoff_len) plus the trainer's own.
  static BatcherConfig from(const DataOptions& opt, int micro_batch_size, int32_t pad_id);
};

enum class BatchPhase { kFixed, kLength, kPairing, kSequential };
const char* batch_phase_name(BatchPhase p);

// Epoch/step arithmetic shared with the dataset check.
int64_t micro_batches_per_epoch(int64_t n_rows, int micro_batch_size);
// Optimizer steps per epoch: an epoch's last accumulation group may be short.
int64_t optimizer_steps_per_epoch(int64_t n_rows, int micro_batch_size, int grad_accumulation);
// The gradient accumulation a run can actually use: at most one group per epoch's worth of
// micro-batches (Training PRO lowers it to blocks/batch - 1 with a warning; see DATASETS.md).
int effective_grad_accumulation(int64_t n_rows, int micro_batch_size, int grad_accumulation);

class Batcher {
 public:
  // Takes the blocks (packing them first when cfg.pack). Throws Error on an empty list or a
  // bad config.
  Batcher(std::vector<Block> blocks, const BatcherConfig& cfg);

  // The next micro-batch; epochs roll over forever (the trainer decides when to stop).
  Batch next();

  // Call after every optimizer step with the step number (1-based, as the trainer counts)
  // and its loss; drives the step and loss switches of the issue #15 schedule, which take
  // effect from the next batch (the rest of the epoch is reordered, so each epoch still sees
  // every row once).
  void observe_loss(int64_t step, double loss);

  const std::vector<Block>& rows() const { return rows_; }
  int64_t micro_batches_per_epoch() const;
  int64_t steps_per_epoch(int grad_accumulation) const;
  int64_t epoch() const { return epoch_; }
  BatchPhase phase() const { return phase_; }

  struct Switch {
    BatchPhase to;
    int64_t epoch, index_in_epoch;  // first batch in the new phase
    std::string reason;             // "epoch", "step", "loss", "pairing done"
  };
  const std::vector<Switch>& switches() const { return switches_; }

  // Serialises/restores everything next() depends on. restore() checks that the state
  // belongs to the same rows and batch settings and throws Error naming the mismatch.
  nlohmann::json state() const;
  void restore(const nlohmann::json& state);

 private:
  using Plan = std::vector<std::vector<int32_t>>;
  Plan make_plan(BatchPhase phase, std::vector<int32_t> rows);
  Plan length_grouped(std::vector<int32_t> rows);
  Plan paired(const std::vector<int32_t>& rows);
  Plan chunk(const std::vector<int32_t>& rows) const;
  void start_epoch();
  void leave_length_phase(const std::string& reason);
  void enter(BatchPhase phase, const std::string& reason);
  Batch assemble(const std::vector<int32_t>& rows) const;
  std::string fingerprint() const;

  std::vector<Block> rows_;
  BatcherConfig cfg_;
  Rng rng_;
  int64_t epoch_ = 0;
  size_t cursor_ = 0;  // next batch of plan_
  Plan plan_;          // this epoch's batches
  BatchPhase phase_ = BatchPhase::kFixed;
  int64_t pairing_until_epoch_ = 0;  // first epoch after the pairing phase
  bool switch_pending_ = false;
  std::string pending_reason_;
  std::vector<Switch> switches_;
};

}  // namespace tpro
