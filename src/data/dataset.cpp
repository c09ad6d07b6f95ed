// Dataset assembly: sources -> blocks -> cutoff policy -> hybrid shares -> eval split.
// See dataset.h; docs/DATASETS.md describes every rule and where it differs from Training PRO.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/rng.h"
#include "data/builtin_templates.h"
#include "data/format_file.h"
#include "data/json_rows.h"
#include "data/raw_slicer.h"
#include "data/text_files.h"

namespace tpro {

namespace {

namespace fs = std::filesystem;

bool is_raw_text_path(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) || fs::path(p).extension() == ".txt";
}

void check_percent(const char* name, double v, bool allow_100) {
  if (!(v >= 0.0) || v > 100.0 || (!allow_100 && v >= 100.0))
    fail(name, " must be a percentage in [0, ", allow_100 ? "100]" : "100)", ", got ", v);
}

// Applies the cutoff policy to one dataset row; false when the row is dropped.
bool fit_to_cutoff(Block& b, const DataOptions& opt, DataStats& st) {
  st.longest = std::max(st.longest, b.size());
  if (b.size() > opt.cutoff_len) {
    ++st.overlong;
    if (opt.eliminate_long_blocks) {
      ++st.eliminated;
      return false;
    }
    ++st.trimmed;
    b.tokens.resize(size_t(opt.cutoff_len));
    b.mask.resize(size_t(opt.cutoff_len));
  }
  if (b.n_trained() == 0) {  // nothing to learn: e.g. the response was trimmed away
    ++st.untrained_dropped;
    return false;
  }
  return true;
}

std::vector<Block> raw_blocks(const std::string& path, const TokenCodec& codec, DataOptions opt,
                              DataStats& st, bool for_eval) {
  if (for_eval) opt.precize_slicing_overlap = false, opt.sliding_window = false;  // each text once
  std::vector<Block> blocks = slice_raw_text(read_text_source(path), codec, opt, st);
  for (const Block& b : blocks) st.longest = std::max(st.longest, b.size());
  return blocks;
}

std::vector<Block> row_blocks(const std::string& path, const TokenCodec& codec, const ChatRender& chat,
                              const DataOptions& opt, DataStats& st) {
  JsonRows rows = read_json_rows(path, opt.skip_bad_lines);
  st.rows += int64_t(rows.rows.size());
  st.bad_lines_skipped += rows.skipped;
  FormatFile format;
  const std::string format_file = opt.rows_format();
  if (!format_file.empty()) format = FormatFile::load(format_file);
  SpecialTokens sp{opt.add_bos_token, opt.add_eos_token};
  std::string after = opt.train_on_inputs ? "" : opt.train_only_after;
  std::vector<Block> out;
  for (size_t i = 0; i < rows.rows.size(); ++i) {
    const JsonRow& row = rows.rows[i];
    check_cancel(opt.cancel, "building row ", i + 1, " of ", path);
    Block b;
    if (!format_file.empty()) {
      b = text_block(format.render(row.value, row.where), after, codec, sp);
      b.kind = BlockKind::kFormatted;
    } else {
      if (!is_chat_row(row.value))
        fail(row.where, ": the row has no \"messages\" or \"conversations\" (hint: rows like "
             "{\"instruction\", \"output\"} need a format file)");
      if (!chat)
        fail(row.where, ": chat rows need a chat template, and the tokenizer has none (hint: set "
             "chat_template_file to a .jinja file or a built-in template (", builtin_chat_template_names(),
             "), or use a format file)");
      const std::vector<ChatMessage> msgs = parse_chat_row(row.value, row.where);
      try {
        b = chat_block(msgs, chat, codec, sp, opt.train_on_inputs, row.where);
      } catch (const Error& e) {
        const auto merged = merge_system_into_user(msgs);
        if (!merged || !is_system_role_refusal(e.what())) throw;
        b = chat_block(*merged, chat, codec, sp, opt.train_on_inputs, row.where);
        ++st.system_merged;
      }
    }
    b.source = BlockSource::kDataset;
    b.doc = int32_t(i);
    if (fit_to_cutoff(b, opt, st)) out.push_back(std::move(b));
  }
  return out;
}

std::vector<Block> source_blocks(const std::string& path, const TokenCodec& codec, const ChatRender& chat,
                                 const DataOptions& opt, DataStats& st, bool for_eval) {
  if (is_raw_text_path(path)) return raw_blocks(path, codec, opt, st, for_eval);
  return row_blocks(path, codec, chat, opt, st);
}

// Indices 0..n-1 in a seeded random order (Fisher-Yates).
std::vector<size_t> shuffled(size_t n, uint64_t seed) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  Rng rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
  return idx;
}

// Keeps exactly round(n * pct / 100) blocks, chosen at random, in their original order.
std::vector<Block> take_share(std::vector<Block> blocks, double pct, uint64_t seed, int64_t& used, int64_t& total) {
  size_t n = blocks.size(), k = size_t(std::llround(double(n) * pct / 100.0));
  std::vector<size_t> pick = shuffled(n, seed);
  pick.resize(k);
  std::sort(pick.begin(), pick.end());
  std::vector<Block> out;
  out.reserve(k);
  for (size_t i : pick) out.push_back(std::move(blocks[i]));
  used = int64_t(k), total = int64_t(n);
  return out;
}

}  // namespace

void validate_data_options(const DataOptions& opt) {
  if (opt.cutoff_len < 2) fail("cutoff_len must be at least 2, got ", opt.cutoff_len);
  check_percent("hybrid_text_ratio", opt.hybrid_text_ratio, true);
  check_percent("hybrid_data_ratio", opt.hybrid_data_ratio, true);
  check_percent("eval_split", opt.eval_split, false);
  check_template_kwargs(opt.chat_template_kwargs, "chat_template_kwargs");
  bool raw = !opt.raw_text_file.empty(), data = !opt.rows_path().empty();
  if (!raw && !data) fail("no training data: set raw_text_file and/or dataset");
  if (raw && data && !opt.hybrid_training)
    fail("both raw_text_file and dataset are set (hint: set hybrid_training to train on both)");
  if (opt.hybrid_training && !(raw && data))
    fail("hybrid_training needs both raw_text_file and dataset");
  if (opt.eval_split > 0.0 && !opt.eval_path().empty())
    fail("set either eval_dataset or eval_split, not both");
  if (data && is_raw_text_path(opt.rows_path()))
    fail("dataset ", opt.rows_path(), " is raw text (hint: use raw_text_file for .txt files and folders)");
  if (opt.pad_to_multiple < 1) fail("pad_to_multiple must be >= 1, got ", opt.pad_to_multiple);
}

namespace {

// Merged [begin, end) byte ranges of held-out raw-text blocks, per file.
using Ranges = std::map<int32_t, std::vector<std::pair<int64_t, int64_t>>>;

Ranges merged_ranges(const std::vector<Block>& held) {
  Ranges r;
  for (const Block& b : held)
    if (b.source == BlockSource::kRawText) r[b.doc].push_back({b.begin, b.end});
  for (auto& [doc, v] : r) {
    std::sort(v.begin(), v.end());
    std::vector<std::pair<int64_t, int64_t>> m;
    for (const auto& x : v) {
      if (!m.empty() && x.first <= m.back().second) m.back().second = std::max(m.back().second, x.second);
      else m.push_back(x);
    }
    v = std::move(m);
  }
  return r;
}

bool overlaps(const Ranges& r, const Block& b) {
  if (b.source != BlockSource::kRawText) return false;
  auto it = r.find(b.doc);
  if (it == r.end()) return false;
  const auto& v = it->second;  // disjoint, sorted: the first range ending after b.begin decides
  auto x = std::upper_bound(v.begin(), v.end(), b.begin,
                            [](int64_t pos, const std::pair<int64_t, int64_t>& p) { return pos < p.second; });
  return x != v.end() && x->first < b.end;
}

// Moves eval_split percent of the non-overlap training blocks to eval; training blocks that
// share text with a held-out block (overlaps, DEMENTOR windows) are dropped so eval stays unseen.
void split_eval(Dataset& ds, const DataOptions& opt) {
  std::vector<size_t> cand;
  for (size_t i = 0; i < ds.train.size(); ++i)
    if (ds.train[i].kind != BlockKind::kOverlap) cand.push_back(i);
  size_t k = size_t(std::llround(double(cand.size()) * opt.eval_split / 100.0));
  k = std::max<size_t>(k, 1);
  if (k >= cand.size())
    fail("eval_split ", opt.eval_split, "% of ", cand.size(), " blocks leaves nothing to train on "
         "(hint: lower eval_split or use eval_dataset)");
  std::vector<size_t> order = shuffled(cand.size(), opt.seed ^ 0x6576616cull);
  std::vector<uint8_t> held(ds.train.size(), 0);
  for (size_t i = 0; i < k; ++i) held[cand[order[i]]] = 1;
  std::vector<Block> train;
  for (size_t i = 0; i < ds.train.size(); ++i) {
    if (held[i]) ds.eval.push_back(std::move(ds.train[i]));
    else train.push_back(std::move(ds.train[i]));
  }
  Ranges r = merged_ranges(ds.eval);
  ds.train.clear();
  for (Block& b : train) {
    if (overlaps(r, b)) ++ds.stats.eval_leak_dropped;
    else ds.train.push_back(std::move(b));
  }
  ds.stats.eval_held_out = int64_t(k);
}

[[noreturn]] void fail_empty(const DataStats& st, const DataOptions& opt) {
  fail("no training blocks left after filtering: ", st.small_blocks_dropped, " blocks had <= min_chars=",
       opt.min_chars, " characters, ", st.eliminated, " rows were longer than cutoff_len=", opt.cutoff_len,
       " and eliminated, ", st.untrained_dropped, " rows had no trained token, ", st.eval_leak_dropped,
       " blocks overlapped the eval split (hint: check the input files, lower min_chars, or raise cutoff_len)");
}

}  // namespace

Dataset build_dataset(const DataOptions& opt, const TokenCodec& codec, const ChatRender& chat) {
  validate_data_options(opt);
  if (opt.add_eos_token && codec.eos < 0)
    fail("add_eos_token is on but the tokenizer has no EOS token");
  Dataset ds;
  DataStats& st = ds.stats;
  std::vector<Block> text, rows;
  if (!opt.raw_text_file.empty()) {
    if (!is_raw_text_path(opt.raw_text_file))
      fail("raw_text_file ", opt.raw_text_file, " is not a .txt file or a folder (hint: use dataset for JSON)");
    text = raw_blocks(opt.raw_text_file, codec, opt, st, false);
  }
  if (!opt.rows_path().empty()) rows = row_blocks(opt.rows_path(), codec, chat, opt, st);
  if (opt.hybrid_training) {
    text = take_share(std::move(text), opt.hybrid_text_ratio, opt.seed ^ 0x74657874ull, st.hybrid_text_used,
                      st.hybrid_text_total);
    rows = take_share(std::move(rows), opt.hybrid_data_ratio, opt.seed ^ 0x64617461ull, st.hybrid_data_used,
                      st.hybrid_data_total);
  }
  ds.train = std::move(text);
  for (Block& b : rows) ds.train.push_back(std::move(b));
  if (ds.train.empty()) fail_empty(st, opt);
  if (!opt.eval_path().empty()) {
    DataStats eval_stats;  // eval drops are not training drops
    ds.eval = source_blocks(opt.eval_path(), codec, chat, opt, eval_stats, true);
    if (ds.eval.empty()) fail("eval_dataset ", opt.eval_path(), " gave no blocks");
  } else if (opt.eval_split > 0.0) {
    split_eval(ds, opt);
    if (ds.train.empty()) fail_empty(st, opt);
  }
  return ds;
}

std::vector<std::string> dataset_notes(const DataStats& s, int64_t cutoff_len) {
  std::vector<std::string> n;
  if (s.bad_lines_skipped) n.push_back(cat(s.bad_lines_skipped, " malformed JSONL lines skipped (skip_bad_lines)"));
  if (s.trimmed) n.push_back(cat(s.trimmed, " rows longer than cutoff_len ", cutoff_len, " were trimmed (longest ", s.longest, " tokens)"));
  if (s.eliminated)
    n.push_back(cat(s.eliminated, " rows longer than cutoff_len ", cutoff_len, " were dropped (eliminate_long_blocks)"));
  if (s.untrained_dropped) n.push_back(cat(s.untrained_dropped, " rows were dropped: no trained token left"));
  if (s.small_blocks_dropped) n.push_back(cat(s.small_blocks_dropped, " raw-text blocks dropped by min_chars"));
  if (s.empty_files) n.push_back(cat(s.empty_files, " raw-text files are empty"));
  if (s.system_merged)
    n.push_back(cat(s.system_merged, " chat rows: the template refuses a system role, so the system message was merged ",
                    "into the first user turn (as llama.cpp does)"));
  if (s.eval_leak_dropped)
    n.push_back(cat(s.eval_leak_dropped, " training blocks overlapping a held-out evaluation block were dropped"));
  return n;
}

}  // namespace tpro
