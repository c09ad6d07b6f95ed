// Micro-batching with dynamic padding, length grouping, the issue #15 schedule, and a JSON
// state for bit-exact resume; see batcher.h.
#include "data/batcher.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "data/packing.h"

namespace tpro {

namespace {

// Rows shuffled together before sorting by length: big enough to group well, small enough
// that batches still mix the dataset (Hugging Face's LengthGroupedSampler uses 50 too).
constexpr int kMegaBatches = 50;

template <typename T>
void shuffle_in_place(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

const BatchPhase kPhases[] = {BatchPhase::kFixed, BatchPhase::kLength, BatchPhase::kPairing, BatchPhase::kSequential};

}  // namespace

const char* batch_phase_name(BatchPhase p) {
  switch (p) {
    case BatchPhase::kFixed: return "fixed";
    case BatchPhase::kLength: return "length";
    case BatchPhase::kPairing: return "pairing";
    case BatchPhase::kSequential: return "sequential";
  }
  return "?";
}

int64_t micro_batches_per_epoch(int64_t n_rows, int micro_batch_size) {
  return (n_rows + micro_batch_size - 1) / micro_batch_size;
}

int64_t optimizer_steps_per_epoch(int64_t n_rows, int micro_batch_size, int grad_accumulation) {
  int64_t mb = micro_batches_per_epoch(n_rows, micro_batch_size);
  int ga = effective_grad_accumulation(n_rows, micro_batch_size, grad_accumulation);
  return (mb + ga - 1) / ga;
}

int effective_grad_accumulation(int64_t n_rows, int micro_batch_size, int grad_accumulation) {
  int64_t mb = micro_batches_per_epoch(n_rows, micro_batch_size);
  return int(std::max<int64_t>(1, std::min<int64_t>(grad_accumulation, mb)));
}

BatcherConfig BatcherConfig::from(const DataOptions& opt, int micro_batch_size, int32_t pad_id) {
  BatcherConfig c;
  c.micro_batch_size = micro_batch_size;
  c.pad_id = pad_id;
  c.pad_to_multiple = opt.pad_to_multiple;
  c.max_len = opt.cutoff_len;
  c.shuffle = opt.shuffle;
  c.group_by_length = opt.group_by_length;
  c.length_schedule = opt.length_schedule;
  c.pack = opt.pack_samples;
  c.seed = opt.seed;
  return c;
}

Batcher::Batcher(std::vector<Block> blocks, const BatcherConfig& cfg) : cfg_(cfg), rng_(cfg.seed) {
  if (cfg.micro_batch_size < 1) fail("micro_batch_size must be >= 1, got ", cfg.micro_batch_size);
  if (cfg.pad_to_multiple < 1) fail("pad_to_multiple must be >= 1, got ", cfg.pad_to_multiple);
  if (cfg.pack && cfg.max_len < 1) fail("sample packing needs a row length (max_len = cutoff_len)");
  if (blocks.empty()) fail("no training blocks to batch");
  for (const Block& b : blocks)
    if (b.tokens.empty() || b.mask.size() != b.tokens.size()) fail("malformed block: ", b.size(), " tokens, ", b.mask.size(), " mask");
  rows_ = cfg.pack ? pack_blocks(blocks, cfg.max_len) : std::move(blocks);
  phase_ = cfg.length_schedule.active(cfg.group_by_length) ? BatchPhase::kLength : BatchPhase::kFixed;
  start_epoch();
}

int64_t Batcher::micro_batches_per_epoch() const {
  return tpro::micro_batches_per_epoch(int64_t(rows_.size()), cfg_.micro_batch_size);
}

int64_t Batcher::steps_per_epoch(int grad_accumulation) const {
  return optimizer_steps_per_epoch(int64_t(rows_.size()), cfg_.micro_batch_size, grad_accumulation);
}

Batcher::Plan Batcher::chunk(const std::vector<int32_t>& rows) const {
  Plan plan;
  for (size_t i = 0; i < rows.size(); i += size_t(cfg_.micro_batch_size)) {
    size_t e = std::min(rows.size(), i + size_t(cfg_.micro_batch_size));
    plan.emplace_back(rows.begin() + int64_t(i), rows.begin() + int64_t(e));
  }
  return plan;
}

// Shuffle, sort each mega-batch by length (longest first), cut into micro-batches, shuffle
// their order, and put the batch holding the longest row first so memory peaks at step one.
Batcher::Plan Batcher::length_grouped(std::vector<int32_t> rows) {
  shuffle_in_place(rows, rng_);
  size_t mega = size_t(cfg_.micro_batch_size) * kMegaBatches;
  auto longer = [&](int32_t a, int32_t b) { return rows_[size_t(a)].size() > rows_[size_t(b)].size(); };
  for (size_t i = 0; i < rows.size(); i += mega)
    std::stable_sort(rows.begin() + int64_t(i), rows.begin() + int64_t(std::min(rows.size(), i + mega)), longer);
  Plan plan = chunk(rows);
  shuffle_in_place(plan, rng_);
  auto top = std::min_element(plan.begin(), plan.end(), [&](const auto& a, const auto& b) { return longer(a[0], b[0]); });
  std::rotate(plan.begin(), top, top + 1);
  return plan;
}

// Consecutive rows (in original order) paired and kept side by side; pairs shuffled and
// grouped by length like length_grouped, but never reordered after chunking, so with B = 1
// a pair is two consecutive steps.
Batcher::Plan Batcher::paired(const std::vector<int32_t>& rows) {
  std::vector<std::vector<int32_t>> pairs;
  for (size_t i = 0; i < rows.size(); i += 2)
    pairs.push_back(i + 1 < rows.size() ? std::vector<int32_t>{rows[i], rows[i + 1]} : std::vector<int32_t>{rows[i]});
  shuffle_in_place(pairs, rng_);
  auto len = [&](const std::vector<int32_t>& p) {
    int64_t n = 0;
    for (int32_t r : p) n = std::max(n, rows_[size_t(r)].size());
    return n;
  };
  size_t mega = std::max<size_t>(1, size_t(cfg_.micro_batch_size) * kMegaBatches / 2);
  for (size_t i = 0; i < pairs.size(); i += mega)
    std::stable_sort(pairs.begin() + int64_t(i), pairs.begin() + int64_t(std::min(pairs.size(), i + mega)),
                     [&](const auto& a, const auto& b) { return len(a) > len(b); });
  std::vector<int32_t> flat;
  for (const auto& p : pairs) flat.insert(flat.end(), p.begin(), p.end());
  return chunk(flat);
}

Batcher::Plan Batcher::make_plan(BatchPhase phase, std::vector<int32_t> rows) {
  std::sort(rows.begin(), rows.end());
  switch (phase) {
    case BatchPhase::kFixed:
      if (cfg_.group_by_length) return length_grouped(std::move(rows));
      if (cfg_.shuffle) shuffle_in_place(rows, rng_);
      return chunk(rows);
    case BatchPhase::kLength: return length_grouped(std::move(rows));
    case BatchPhase::kPairing: return paired(rows);
    case BatchPhase::kSequential: return chunk(rows);
  }
  return {};
}

void Batcher::enter(BatchPhase phase, const std::string& reason) {
  phase_ = phase;
  switches_.push_back({phase, epoch_, int64_t(cursor_), reason});
}

void Batcher::leave_length_phase(const std::string& reason) {
  int p = cfg_.length_schedule.pairing_epochs;
  if (p > 0) {
    pairing_until_epoch_ = epoch_ + p;  // a mid-epoch switch counts its epoch as the first
    enter(BatchPhase::kPairing, reason);
  } else {
    enter(BatchPhase::kSequential, reason);
  }
}

void Batcher::start_epoch() {
  cursor_ = 0;
  if (phase_ == BatchPhase::kLength) {
    const LengthSchedule& s = cfg_.length_schedule;
    if (switch_pending_) {
      switch_pending_ = false;
      leave_length_phase(pending_reason_);
    } else if (s.switch_epoch() > 0 && epoch_ >= s.switch_epoch()) {
      leave_length_phase("epoch");
    }
  }
  if (phase_ == BatchPhase::kPairing && epoch_ >= pairing_until_epoch_) enter(BatchPhase::kSequential, "pairing done");
  std::vector<int32_t> all(rows_.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int32_t(i);
  plan_ = make_plan(phase_, std::move(all));
}

Batch Batcher::next() {
  if (cursor_ == plan_.size()) {
    ++epoch_;
    start_epoch();
  } else if (switch_pending_) {  // mid-epoch: the rows not yet seen this epoch, in the new order
    std::vector<int32_t> rest;
    for (size_t i = cursor_; i < plan_.size(); ++i) rest.insert(rest.end(), plan_[i].begin(), plan_[i].end());
    switch_pending_ = false;
    leave_length_phase(pending_reason_);
    Plan tail = make_plan(phase_, std::move(rest));
    plan_.resize(cursor_);
    plan_.insert(plan_.end(), tail.begin(), tail.end());
  }
  Batch b = assemble(plan_[cursor_]);
  b.epoch = epoch_;
  b.index_in_epoch = int64_t(cursor_);
  b.last_in_epoch = cursor_ + 1 == plan_.size();
  ++cursor_;
  return b;
}

void Batcher::observe_loss(int64_t step, double loss) {
  if (phase_ != BatchPhase::kLength || switch_pending_) return;
  const LengthSchedule& s = cfg_.length_schedule;
  if (s.switch_step() > 0 && step >= s.switch_step()) pending_reason_ = "step";
  else if (s.switch_loss() > 0.0 && std::isfinite(loss) && loss <= s.switch_loss() && loss >= s.switch_loss_min())
    pending_reason_ = "loss";
  else return;
  switch_pending_ = true;
}

Batch Batcher::assemble(const std::vector<int32_t>& rows) const {
  Batch b;
  b.B = int(rows.size());
  int64_t longest = 0;
  for (int32_t r : rows) longest = std::max(longest, rows_[size_t(r)].size());
  int64_t m = cfg_.pad_to_multiple, T = (longest + m - 1) / m * m;
  if (cfg_.max_len > 0) T = std::min(T, std::max<int64_t>(longest, cfg_.max_len));
  b.T = int(T);
  size_t n = size_t(b.B) * size_t(T);
  b.tokens.assign(n, cfg_.pad_id);
  b.pos.assign(n, 0);
  b.seg_start.resize(n);
  b.mask.assign(n, 0);
  b.rows = rows;
  for (int i = 0; i < b.B; ++i) {
    const Block& blk = rows_[size_t(rows[size_t(i)])];
    size_t base = size_t(i) * size_t(T), len = size_t(blk.size());
    for (size_t t = 0; t < size_t(T); ++t) {
      if (t < len) {
        b.tokens[base + t] = blk.tokens[t];
        b.mask[base + t] = t == 0 ? 0 : blk.mask[t];
        b.pos[base + t] = blk.packed() ? blk.pos[t] : int32_t(t);
        b.seg_start[base + t] = blk.packed() ? blk.seg_start[t] : 0;
      } else {
        b.seg_start[base + t] = int32_t(t);  // padding attends to itself only
      }
    }
  }
  for (uint8_t v : b.mask) b.n_trained += v;
  return b;
}

// FNV-1a over every row's tokens, mask, positions and segments: a resumed run must batch
// exactly the rows it was saved with.
std::string Batcher::fingerprint() const {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int k = 0; k < 8; ++k) h = (h ^ ((v >> (8 * k)) & 0xFF)) * 1099511628211ull;
  };
  mix(rows_.size());
  for (const Block& b : rows_) {
    mix(uint64_t(b.size()));
    for (size_t t = 0; t < b.tokens.size(); ++t) {
      mix(uint64_t(uint32_t(b.tokens[t])) | uint64_t(b.mask[t]) << 32);
      if (b.packed()) mix(uint64_t(uint32_t(b.pos[t])) | uint64_t(uint32_t(b.seg_start[t])) << 32);
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

nlohmann::json Batcher::state() const {
  nlohmann::json j;
  j["format"] = "tpro-batcher";
  j["version"] = 1;
  j["rows"] = rows_.size();
  j["fingerprint"] = fingerprint();
  j["micro_batch_size"] = cfg_.micro_batch_size;
  j["shuffle"] = cfg_.shuffle;
  j["group_by_length"] = cfg_.group_by_length;
  j["pack"] = cfg_.pack;
  j["epoch"] = epoch_;
  j["cursor"] = cursor_;
  j["plan"] = plan_;
  nlohmann::json rng = nlohmann::json::array();
  for (uint64_t w : rng_.state()) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(w));
    rng.push_back(buf);
  }
  j["rng"] = rng;  // hex strings: JSON readers other than ours lose 64-bit integers
  j["phase"] = batch_phase_name(phase_);
  j["pairing_until_epoch"] = pairing_until_epoch_;
  j["switch_pending"] = switch_pending_;
  j["pending_reason"] = pending_reason_;
  nlohmann::json sw = nlohmann::json::array();
  for (const Switch& s : switches_)
    sw.push_back({{"to", batch_phase_name(s.to)}, {"epoch", s.epoch}, {"index_in_epoch", s.index_in_epoch}, {"reason", s.reason}});
  j["switches"] = sw;
  return j;
}

namespace {

using json = nlohmann::json;

const json& field(const json& j, const char* key, json::value_t type) {
  auto it = j.find(key);
  bool ok = it != j.end() && (it->type() == type ||
                              (type == json::value_t::number_integer && it->type() == json::value_t::number_unsigned));
  if (!ok) fail("batcher state: \"", key, "\" is missing or has the wrong type (expected ", json(type).type_name(), ")");
  return *it;
}

BatchPhase phase_named(const std::string& s) {
  for (BatchPhase p : kPhases)
    if (s == batch_phase_name(p)) return p;
  fail("batcher state: unknown phase \"", s, "\"");
}

uint64_t hex_u64(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : "";
  if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    fail("batcher state: rng words must be 16 hex digits, got ", v.dump());
  return std::stoull(s, nullptr, 16);
}

template <typename T>
void expect_same(const char* key, const T& saved, const T& now) {
  if (!(saved == now))
    fail("batcher state was saved with ", key, " = ", json(saved).dump(), " but this run has ", json(now).dump(),
         " (hint: resume with the same dataset and batch settings)");
}

}  // namespace

void Batcher::restore(const json& j) {
  if (!j.is_object() || j.value("format", "") != "tpro-batcher") fail("batcher state: not a tpro-batcher state object");
  if (field(j, "version", json::value_t::number_integer).get<int64_t>() != 1)
    fail("batcher state: unsupported version ", j["version"].dump());
  expect_same("rows", field(j, "rows", json::value_t::number_integer).get<int64_t>(), int64_t(rows_.size()));
  expect_same("fingerprint", field(j, "fingerprint", json::value_t::string).get<std::string>(), fingerprint());
  expect_same("micro_batch_size", field(j, "micro_batch_size", json::value_t::number_integer).get<int64_t>(),
              int64_t(cfg_.micro_batch_size));
  expect_same("shuffle", field(j, "shuffle", json::value_t::boolean).get<bool>(), cfg_.shuffle);
  expect_same("group_by_length", field(j, "group_by_length", json::value_t::boolean).get<bool>(), cfg_.group_by_length);
  expect_same("pack", field(j, "pack", json::value_t::boolean).get<bool>(), cfg_.pack);
  Plan plan;
  std::vector<uint8_t> seen(rows_.size(), 0);
  for (const json& batch : field(j, "plan", json::value_t::array)) {
    if (!batch.is_array() || batch.empty() || batch.size() > size_t(cfg_.micro_batch_size))
      fail("batcher state: every plan entry must be a batch of 1..", cfg_.micro_batch_size, " rows");
    std::vector<int32_t> b;
    for (const json& r : batch) {
      int64_t v = r.is_number_integer() ? r.get<int64_t>() : -1;
      if (v < 0 || v >= int64_t(rows_.size()) || seen[size_t(v)]++)
        fail("batcher state: plan row ", r.dump(), " is out of range or repeated");
      b.push_back(int32_t(v));
    }
    plan.push_back(std::move(b));
  }
  if (std::count(seen.begin(), seen.end(), 0) != 0) fail("batcher state: the plan does not cover every row");
  int64_t cursor = field(j, "cursor", json::value_t::number_integer).get<int64_t>();
  int64_t epoch = field(j, "epoch", json::value_t::number_integer).get<int64_t>();
  if (cursor < 0 || cursor > int64_t(plan.size()) || epoch < 0)
    fail("batcher state: cursor ", cursor, " / epoch ", epoch, " out of range");
  const json& rng = field(j, "rng", json::value_t::array);
  if (rng.size() != 4) fail("batcher state: rng must hold 4 words");
  std::array<uint64_t, 4> words{};
  for (size_t i = 0; i < 4; ++i) words[i] = hex_u64(rng[i]);
  std::vector<Switch> switches;
  for (const json& s : field(j, "switches", json::value_t::array))
    switches.push_back({phase_named(s.value("to", "")), s.value("epoch", int64_t(0)), s.value("index_in_epoch", int64_t(0)),
                        s.value("reason", "")});
  phase_ = phase_named(field(j, "phase", json::value_t::string).get<std::string>());
  pairing_until_epoch_ = field(j, "pairing_until_epoch", json::value_t::number_integer).get<int64_t>();
  switch_pending_ = field(j, "switch_pending", json::value_t::boolean).get<bool>();
  pending_reason_ = field(j, "pending_reason", json::value_t::string).get<std::string>();
  rng_.set_state(words);
  plan_ = std::move(plan);
  cursor_ = size_t(cursor);
  epoch_ = epoch;
  switches_ = std::move(switches);
}

}  // namespace tpro
