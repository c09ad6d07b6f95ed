// Dataset check report and decoded sample; see check.h. The step formulas are Training PRO's
// check_dataset ones (script.py), kept in its units (micro-batch steps) so numbers match.
#include "data/check.h"

#include <cmath>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/file.h"
#include "data/batcher.h"
#include "data/dataset.h"
#include "data/packing.h"

namespace tpro {

namespace {

constexpr int kSamplePerKind = 5;
constexpr size_t kSampleMax = 20;

int64_t ceil_div(double a, double b) { return int64_t(std::ceil(a / b)); }

// Training PRO's suggestions, from its check_dataset.
void step_suggestions(CheckReport& r) {
  r.total_steps = int64_t(double(ceil_div(double(r.rows), r.micro_batch_size)) * r.epochs);
  r.steps_per_epoch = r.epochs > 0 ? ceil_div(double(r.total_steps), r.epochs) : 0;
  int64_t min_warm = ceil_div(100.0, r.grad_accumulation);
  r.warmup_suggested = std::min(min_warm * r.grad_accumulation, ceil_div(double(r.total_steps) * 0.1, 1.0));
  r.warmup_suggested = std::min(r.warmup_suggested, r.steps_per_epoch);
  r.save_every_min = ceil_div(double(r.total_steps), 10.0);
  r.save_every_max = ceil_div(double(r.total_steps), 5.0);
}

void pick_sample(CheckReport& r, const std::vector<Block>& train) {
  std::map<std::pair<int, int>, int> per_kind;
  for (const Block& b : train) {
    if (r.sample.size() >= kSampleMax) break;
    int& n = per_kind[{int(b.source), int(b.kind)}];
    if (n < kSamplePerKind) r.sample.push_back(b), ++n;
  }
}

}  // namespace

CheckReport check_dataset(const DataOptions& opt, const TokenCodec& codec, const ChatRender& chat,
                          int micro_batch_size, int grad_accumulation, double epochs) {
  if (micro_batch_size < 1) fail("micro_batch_size must be >= 1, got ", micro_batch_size);
  if (grad_accumulation < 1) fail("grad_accumulation must be >= 1, got ", grad_accumulation);
  if (!(epochs > 0)) fail("epochs must be > 0, got ", epochs);
  Dataset ds = build_dataset(opt, codec, chat);
  CheckReport r;
  r.cutoff_len = opt.cutoff_len, r.micro_batch_size = micro_batch_size;
  r.grad_accumulation = grad_accumulation, r.epochs = epochs;
  r.eliminate_long_blocks = opt.eliminate_long_blocks;
  r.stats = ds.stats;
  r.blocks = int64_t(ds.train.size());
  r.eval_blocks = int64_t(ds.eval.size());
  for (const Block& b : ds.train) {
    r.tokens += b.size();
    r.trained_tokens += b.n_trained();
    (b.source == BlockSource::kRawText ? r.raw_text_blocks : r.dataset_blocks) += 1;
  }
  r.longest = ds.stats.longest;
  r.suggested_cutoff = (r.longest + 31) / 32 * 32;
  r.over_cutoff = ds.stats.overlong;
  r.rows = r.blocks;
  if (opt.pack_samples) {
    PackStats ps;
    r.rows = int64_t(pack_blocks(ds.train, opt.cutoff_len, &ps).size());
    r.pack_fill = ps.fill();
  }
  step_suggestions(r);
  r.effective_grad_accumulation = effective_grad_accumulation(r.rows, micro_batch_size, grad_accumulation);
  r.optimizer_steps_per_epoch = optimizer_steps_per_epoch(r.rows, micro_batch_size, grad_accumulation);
  int64_t mb = micro_batches_per_epoch(r.rows, micro_batch_size);
  if (grad_accumulation > mb) {
    r.grad_accumulation_too_high = true;
    r.warnings.push_back(cat("gradient accumulation ", grad_accumulation, " exceeds the data: an epoch has only ", mb,
                             " micro-batches of ", micro_batch_size, "; the trainer will lower it to ",
                             r.effective_grad_accumulation, " (better: more data or a smaller micro_batch_size)"));
  }
  if (r.longest > opt.cutoff_len)
    r.warnings.push_back(cat(r.over_cutoff, " rows are longer than cutoff_len ", opt.cutoff_len, " and were ",
                             opt.eliminate_long_blocks ? "eliminated" : "trimmed", " (suggested cutoff_len: ",
                             r.suggested_cutoff, ")"));
  if (ds.stats.sentences_split > 0)
    r.warnings.push_back(cat(ds.stats.sentences_split, " sentences were longer than a block and were split"));
  pick_sample(r, ds.train);
  return r;
}

std::string format_check_report(const CheckReport& r) {
  const DataStats& s = r.stats;
  std::ostringstream o;
  o << "Training blocks: " << r.blocks;
  if (r.raw_text_blocks && r.dataset_blocks) o << " (raw text " << r.raw_text_blocks << ", dataset " << r.dataset_blocks << ")";
  o << "\n";
  if (s.files) {
    o << "Raw text: " << s.files << " files (" << s.empty_files << " empty), " << s.sentences << " sentences ("
      << s.sentences_split << " split), " << s.text_blocks << " blocks + " << s.overlap_blocks << " overlapping + "
      << s.window_blocks << " DEMENTOR; " << s.small_blocks_dropped << " dropped by min_chars, "
      << s.overlap_duplicates << " duplicate overlaps skipped\n";
  }
  if (s.rows) {
    o << "Dataset: " << s.rows << " rows";
    if (s.bad_lines_skipped) o << ", " << s.bad_lines_skipped << " bad lines skipped";
    if (s.system_merged) o << ", " << s.system_merged << " system messages merged into the first user turn";
    o << ", " << s.untrained_dropped << " dropped with no trained token\n";
  }
  if (s.hybrid_text_total || s.hybrid_data_total)
    o << "Hybrid: " << s.hybrid_text_used << " of " << s.hybrid_text_total << " raw-text blocks, " << s.hybrid_data_used
      << " of " << s.hybrid_data_total << " dataset blocks\n";
  if (r.eval_blocks)
    o << "Eval blocks: " << r.eval_blocks << " (" << s.eval_held_out << " held out, " << s.eval_leak_dropped
      << " overlapping training blocks dropped)\n";
  o << "Tokens: " << r.tokens << " (" << r.trained_tokens << " trained)\n";
  o << "Longest block: " << r.longest << " tokens; suggested cutoff_len: " << r.suggested_cutoff << " (current "
    << r.cutoff_len << ")\n";
  o << "Longer than cutoff_len: " << r.over_cutoff << " rows would be "
    << (r.eliminate_long_blocks ? "eliminated" : "trimmed") << " (" << s.trimmed << " trimmed, " << s.eliminated
    << " eliminated)\n";
  if (r.pack_fill > 0) o << "Packed rows: " << r.rows << " (" << int(r.pack_fill * 1000) / 10.0 << "% full)\n";
  o << "[Batch size: " << r.micro_batch_size << ", Epochs: " << r.epochs << ", Gradient accumulation: "
    << r.grad_accumulation << "]\n";
  o << "Total number of steps: " << r.total_steps << "\n";
  o << "Steps per epoch: " << r.steps_per_epoch << " (optimizer steps per epoch: " << r.optimizer_steps_per_epoch
    << " with gradient accumulation " << r.effective_grad_accumulation << ")\n";
  o << "Suggestions:\n";
  o << "  Checkpoints: save every " << r.save_every_min << " - " << r.save_every_max << " steps\n";
  o << "  Warmup steps: " << r.warmup_suggested << "\n";
  for (const std::string& w : r.warnings) o << "WARNING: " << w << "\n";
  return o.str();
}

std::string render_check_sample(const CheckReport& r, const TokenCodec& codec) {
  std::ostringstream o;
  o << "# tpro check: " << r.sample.size() << " of " << r.blocks << " training blocks, decoded.\n"
    << "# Untrained tokens (prompts, context, each block's first token) are shown between\n"
    << "# \u27e6 and \u27e7; everything else is a trained target.\n";
  for (size_t i = 0; i < r.sample.size(); ++i) {
    const Block& b = r.sample[i];
    o << "\n=== sample " << i + 1 << ": " << block_kind_name(b.kind) << " block from "
      << (b.source == BlockSource::kRawText ? "raw text" : "dataset") << " (" << (b.source == BlockSource::kRawText ? "file " : "row ")
      << b.doc + 1 << "), " << b.size() << " tokens, " << b.n_trained() << " trained ===\n";
    o << decode_block(b, codec, true) << "\n";
  }
  return o.str();
}

std::string decode_block(const Block& b, const TokenCodec& codec, bool mark_untrained) {
  if (!mark_untrained) return codec.decode(std::span<const int32_t>(b.tokens.data(), b.tokens.size()));
  std::string o;
  size_t t = 0;
  while (t < b.tokens.size()) {  // decode runs of equal mask together so characters stay whole
    size_t e = t;
    while (e < b.tokens.size() && b.mask[e] == b.mask[t]) ++e;
    std::string text = codec.decode(std::span<const int32_t>(b.tokens.data() + t, e - t));
    o += b.mask[t] ? text : "\u27e6" + text + "\u27e7";
    t = e;
  }
  return o;
}

void write_check_sample(const std::filesystem::path& path, const CheckReport& r, const TokenCodec& codec) {
  write_file_atomic(path, render_check_sample(r, codec));
}

}  // namespace tpro
