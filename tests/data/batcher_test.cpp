// Batcher: dynamic padding, real length grouping, the issue #15 schedule order (epoch, step
// and loss switches, pairing phase), sample packing, and bit-exact resume from JSON state.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/rng.h"
#include "data/batcher.h"
#include "data/packing.h"
#include "data_test_util.h"

using namespace tpro;
using namespace tpro::test;

namespace {

// Block `id` of `len` tokens: token t is id*1000 + t, all trained.
Block blk(int id, int len) {
  Block b;
  for (int t = 0; t < len; ++t) b.tokens.push_back(id * 1000 + t), b.mask.push_back(t ? 1 : 0);
  b.doc = id;
  return b;
}

std::vector<Block> random_blocks(int n, uint64_t seed, int max_len = 64) {
  Rng rng(seed);
  std::vector<Block> v;
  for (int i = 0; i < n; ++i) v.push_back(blk(i, 1 + int(rng.below(uint64_t(max_len)))));
  return v;
}

BatcherConfig cfg(int B, bool shuffle = true) {
  BatcherConfig c;
  c.micro_batch_size = B;
  c.pad_id = -7;
  c.shuffle = shuffle;
  return c;
}

std::vector<std::vector<int32_t>> epoch_batches(Batcher& b) {
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < b.micro_batches_per_epoch(); ++i) out.push_back(b.next().rows);
  return out;
}

std::vector<int32_t> flat(const std::vector<std::vector<int32_t>>& batches) {
  std::vector<int32_t> f;
  for (const auto& b : batches) f.insert(f.end(), b.begin(), b.end());
  return f;
}

std::vector<int32_t> iota(int n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = i;
  return v;
}

// Length-grouped: sorted by length, batches are non-overlapping length intervals (one
// mega-batch covers these small datasets), and the longest row comes first.
void expect_length_grouped(const std::vector<Block>& rows, std::vector<std::vector<int32_t>> batches) {
  auto len = [&](int32_t r) { return rows[size_t(r)].size(); };
  int64_t longest = 0;
  for (const Block& b : rows) longest = std::max(longest, b.size());
  EXPECT_EQ(len(batches[0][0]), longest);
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (const auto& b : batches) {
    int64_t lo = len(b[0]), hi = len(b[0]);
    for (int32_t r : b) lo = std::min(lo, len(r)), hi = std::max(hi, len(r));
    ranges.push_back({lo, hi});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
}

}  // namespace

TEST(Batcher, DynamicPaddingIsMasked) {
  Batcher b({blk(0, 3), blk(1, 5), blk(2, 2)}, cfg(2, false));
  Batch x = b.next();
  EXPECT_EQ(x.B, 2);
  EXPECT_EQ(x.T, 5);
  EXPECT_EQ(x.tokens, (std::vector<int32_t>{0, 1, 2, -7, -7, 1000, 1001, 1002, 1003, 1004}));
  EXPECT_EQ(x.mask, (std::vector<uint8_t>{0, 1, 1, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(x.pos, (std::vector<int32_t>{0, 1, 2, 0, 0, 0, 1, 2, 3, 4}));
  EXPECT_EQ(x.seg_start, (std::vector<int32_t>{0, 0, 0, 3, 4, 0, 0, 0, 0, 0}));
  EXPECT_EQ(x.n_trained, 6);
  EXPECT_FALSE(x.last_in_epoch);
  Batch y = b.next();
  EXPECT_EQ(y.B, 1);
  EXPECT_EQ(y.T, 2);
  EXPECT_TRUE(y.last_in_epoch);
  EXPECT_EQ(b.next().epoch, 1);  // rolls over
}

TEST(Batcher, PadToMultipleCappedAtMaxLen) {
  BatcherConfig c = cfg(2, false);
  c.pad_to_multiple = 8;
  EXPECT_EQ(Batcher({blk(0, 3), blk(1, 5)}, c).next().T, 8);
  c.max_len = 6;
  EXPECT_EQ(Batcher({blk(0, 3), blk(1, 5)}, c).next().T, 6);
  c.max_len = 4;  // never below the longest row
  EXPECT_EQ(Batcher({blk(0, 3), blk(1, 5)}, c).next().T, 5);
}

TEST(Batcher, EachEpochIsAPermutation) {
  Batcher b(random_blocks(10, 1), cfg(3));
  EXPECT_EQ(b.micro_batches_per_epoch(), 4);
  auto e0 = flat(epoch_batches(b)), e1 = flat(epoch_batches(b));
  EXPECT_NE(e0, e1);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e0, iota(10));
  EXPECT_EQ(e1, iota(10));
  Batcher s(random_blocks(10, 1), cfg(3, false));
  EXPECT_EQ(flat(epoch_batches(s)), iota(10));
}

TEST(Batcher, GroupByLengthReallyGroups) {
  auto blocks = random_blocks(60, 2);
  BatcherConfig c = cfg(4);
  c.group_by_length = true;
  Batcher b(blocks, c);
  for (int e = 0; e < 3; ++e) expect_length_grouped(blocks, epoch_batches(b));
  // The padding it saves, against plain shuffling of the same rows.
  auto padded = [&](Batcher& x) {
    int64_t cells = 0;
    for (int64_t i = 0; i < x.micro_batches_per_epoch(); ++i) {
      Batch y = x.next();
      cells += int64_t(y.B) * y.T;
    }
    return cells;
  };
  Batcher g(blocks, c), s(blocks, cfg(4));
  EXPECT_LT(padded(g) * 10, padded(s) * 8);  // at least 20% fewer padded cells
}

TEST(Batcher, Issue15SwitchesAtAnEpoch) {
  auto blocks = random_blocks(12, 3);
  BatcherConfig c = cfg(4);
  c.group_by_length = true;
  c.length_schedule = {LengthSwitch::kEpoch, 2};
  Batcher b(blocks, c);
  EXPECT_EQ(b.phase(), BatchPhase::kLength);
  expect_length_grouped(blocks, epoch_batches(b));
  expect_length_grouped(blocks, epoch_batches(b));
  EXPECT_EQ(flat(epoch_batches(b)), iota(12));  // epoch 2: original order
  EXPECT_EQ(b.phase(), BatchPhase::kSequential);
  EXPECT_EQ(flat(epoch_batches(b)), iota(12));
  ASSERT_EQ(b.switches().size(), 1u);
  EXPECT_EQ(b.switches()[0].epoch, 2);
  EXPECT_EQ(b.switches()[0].index_in_epoch, 0);
  EXPECT_EQ(b.switches()[0].reason, "epoch");
}

TEST(Batcher, Issue15PairingPhaseKeepsNeighboursTogether) {
  auto blocks = random_blocks(11, 4);
  BatcherConfig c = cfg(1);  // pairs are then two consecutive steps
  c.group_by_length = true;
  c.length_schedule = {LengthSwitch::kEpoch, 1};
  c.length_schedule.pairing_epochs = 2;
  Batcher b(blocks, c);
  epoch_batches(b);
  for (int e = 1; e <= 2; ++e) {
    auto order = flat(epoch_batches(b));
    EXPECT_EQ(b.phase(), BatchPhase::kPairing);
    std::vector<int32_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, iota(11));
    EXPECT_NE(order, iota(11));  // pairs are shuffled and grouped by length
    for (size_t i = 0; i < order.size(); ++i) {  // 2k is always followed by 2k+1
      if (order[i] % 2 == 0 && order[i] != 10) {
        ASSERT_LT(i + 1, order.size());
        EXPECT_EQ(order[i + 1], order[i] + 1);
      }
    }
  }
  EXPECT_EQ(flat(epoch_batches(b)), iota(11));
  ASSERT_EQ(b.switches().size(), 2u);
  EXPECT_EQ(b.switches()[1].to, BatchPhase::kSequential);
  EXPECT_EQ(b.switches()[1].epoch, 3);
}

TEST(Batcher, Issue15LossSwitchReordersTheRestOfTheEpoch) {
  auto blocks = random_blocks(20, 5);
  BatcherConfig c = cfg(2);
  c.group_by_length = true;
  c.length_schedule = {LengthSwitch::kLoss, 1.5};
  Batcher b(blocks, c);
  std::vector<int32_t> seen;
  for (int i = 0; i < 3; ++i) {
    Batch x = b.next();
    seen.insert(seen.end(), x.rows.begin(), x.rows.end());
    b.observe_loss(i + 1, 2.0);  // above the threshold: nothing happens
  }
  b.observe_loss(4, 1.2);
  EXPECT_EQ(b.phase(), BatchPhase::kLength);  // takes effect at the next batch
  std::vector<int32_t> rest;
  for (int i = 3; i < 10; ++i) {
    Batch x = b.next();
    EXPECT_EQ(x.epoch, 0);
    rest.insert(rest.end(), x.rows.begin(), x.rows.end());
  }
  EXPECT_EQ(b.phase(), BatchPhase::kSequential);
  EXPECT_TRUE(std::is_sorted(rest.begin(), rest.end()));
  std::vector<int32_t> all = seen;
  all.insert(all.end(), rest.begin(), rest.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, iota(20));  // the epoch still sees every row exactly once
  EXPECT_EQ(b.next().epoch, 1);
  ASSERT_EQ(b.switches().size(), 1u);
  EXPECT_EQ(b.switches()[0].reason, "loss");
  EXPECT_EQ(b.switches()[0].index_in_epoch, 3);
}

TEST(Batcher, Issue15StepSwitch) {
  BatcherConfig c = cfg(2);
  c.group_by_length = true;
  c.length_schedule = {LengthSwitch::kStep, 5};
  Batcher b(random_blocks(20, 6), c);
  for (int step = 1; step <= 4; ++step) b.next(), b.observe_loss(step, 9.0);
  EXPECT_EQ(b.phase(), BatchPhase::kLength);
  b.next();
  b.observe_loss(5, 9.0);
  b.next();
  EXPECT_EQ(b.phase(), BatchPhase::kSequential);
  EXPECT_EQ(b.switches()[0].reason, "step");
}

TEST(Batcher, StepsPerEpochAndGradAccumulation) {
  EXPECT_EQ(micro_batches_per_epoch(10, 4), 3);
  EXPECT_EQ(optimizer_steps_per_epoch(10, 4, 2), 2);  // 3 micro-batches: groups of 2 + 1
  EXPECT_EQ(effective_grad_accumulation(10, 4, 8), 3);
  EXPECT_EQ(optimizer_steps_per_epoch(10, 4, 8), 1);
  EXPECT_EQ(effective_grad_accumulation(10, 4, 2), 2);
  Batcher b(random_blocks(10, 7), cfg(4));
  EXPECT_EQ(b.steps_per_epoch(2), 2);
}

TEST(Packing, BestFitDecreasingWithPerDocumentPositions) {
  // Lengths 3, 4, 5, 6, 2 into rows of 8: {0, 2}, {1}, {3, 4}.
  std::vector<Block> blocks = {blk(0, 3), blk(1, 4), blk(2, 5), blk(3, 6), blk(4, 2)};
  PackStats st;
  auto rows = pack_blocks(blocks, 8, &st);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].tokens, (std::vector<int32_t>{0, 1, 2, 2000, 2001, 2002, 2003, 2004}));
  EXPECT_EQ(rows[0].pos, (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 3, 4}));
  EXPECT_EQ(rows[0].seg_start, (std::vector<int32_t>{0, 0, 0, 3, 3, 3, 3, 3}));
  EXPECT_EQ(rows[0].mask, (std::vector<uint8_t>{0, 1, 1, 0, 1, 1, 1, 1}));  // no cross-document target
  EXPECT_EQ(rows[0].kind, BlockKind::kPacked);
  EXPECT_FALSE(rows[1].packed());  // a single document stays as it was
  EXPECT_EQ(rows[1].tokens, blocks[1].tokens);
  EXPECT_EQ(rows[2].seg_start, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 6, 6}));
  EXPECT_EQ(st.rows, 3);
  EXPECT_EQ(st.tokens, 20);
  EXPECT_NEAR(st.fill(), 20.0 / 24.0, 1e-12);
  EXPECT_ERROR_HAS(pack_blocks(blocks, 5), "cannot pack a block of 6 tokens into rows of 5");
}

TEST(Packing, BatcherCarriesPositionsAndSegments) {
  BatcherConfig c = cfg(8, false);
  c.pack = true;
  c.max_len = 8;
  Batcher b({blk(0, 3), blk(1, 4), blk(2, 5), blk(3, 6), blk(4, 2)}, c);
  EXPECT_EQ(b.rows().size(), 3u);
  Batch x = b.next();
  EXPECT_EQ(x.B, 3);
  EXPECT_EQ(x.T, 8);
  EXPECT_EQ(std::vector<int32_t>(x.pos.begin(), x.pos.begin() + 8), (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 3, 4}));
  EXPECT_EQ(std::vector<int32_t>(x.seg_start.begin() + 8, x.seg_start.begin() + 16),
            (std::vector<int32_t>{0, 0, 0, 0, 4, 5, 6, 7}));  // row 1: one document, then padding
  EXPECT_EQ(x.n_trained, 20 - 5);  // five documents, each first token untrained
}

// With a loss range [loss_min, at] only a loss inside it switches: one above `at` or below
// `loss_min` (a lucky dip) leaves the order length-grouped.
TEST(Batcher, Issue15LossRangeSwitchesOnlyInside) {
  auto blocks = random_blocks(20, 5);
  BatcherConfig c = cfg(2);
  c.group_by_length = true;
  c.length_schedule = {LengthSwitch::kLoss, 1.5};
  c.length_schedule.loss_min = 1.2;
  EXPECT_DOUBLE_EQ(c.length_schedule.switch_loss_min(), 1.2);
  Batcher b(blocks, c);
  const double losses[] = {2.0, 1.1, 0.5, NAN, 1.6};
  for (int i = 0; i < 5; ++i) {
    b.next();
    b.observe_loss(i + 1, losses[i]);
  }
  b.next();
  EXPECT_EQ(b.phase(), BatchPhase::kLength);
  EXPECT_TRUE(b.switches().empty());
  b.observe_loss(6, 1.2);  // the ends are inside
  b.next();
  EXPECT_EQ(b.phase(), BatchPhase::kSequential);
  ASSERT_EQ(b.switches().size(), 1u);
  EXPECT_EQ(b.switches()[0].reason, "loss");
  EXPECT_EQ(b.switches()[0].index_in_epoch, 6);
  // loss_min only counts for the loss trigger.
  LengthSchedule s{LengthSwitch::kStep, 3};
  s.loss_min = 1.0;
  EXPECT_EQ(s.switch_loss_min(), 0.0);
}

TEST(Batcher, ResumeIsBitExact) {
  auto blocks = random_blocks(23, 8);
  BatcherConfig c = cfg(3);
  c.group_by_length = true;
  c.pad_to_multiple = 8;
  c.length_schedule = {LengthSwitch::kLoss, 1.0};
  c.length_schedule.pairing_epochs = 1;
  auto drive = [](Batcher& b, int from, int to, std::vector<Batch>* out) {
    for (int i = from; i < to; ++i) {
      Batch x = b.next();
      b.observe_loss(i + 1, i == 11 ? 0.5 : 3.0);  // the loss switch fires mid-epoch 1
      if (out) out->push_back(std::move(x));
    }
  };
  for (int cut : {0, 5, 8, 12, 13, 20}) {
    Batcher a(blocks, c);
    drive(a, 0, cut, nullptr);
    std::string saved = a.state().dump();
    Batcher r(blocks, c);
    r.restore(nlohmann::json::parse(saved));
    std::vector<Batch> xa, xr;
    drive(a, cut, 40, &xa);
    drive(r, cut, 40, &xr);
    for (size_t i = 0; i < xa.size(); ++i) {
      EXPECT_EQ(xa[i].tokens, xr[i].tokens) << cut << " " << i;
      EXPECT_EQ(xa[i].mask, xr[i].mask);
      EXPECT_EQ(xa[i].rows, xr[i].rows);
      EXPECT_EQ(xa[i].epoch, xr[i].epoch);
      EXPECT_EQ(xa[i].index_in_epoch, xr[i].index_in_epoch);
      EXPECT_EQ(xa[i].T, xr[i].T);
    }
    EXPECT_EQ(a.state(), r.state());
    EXPECT_EQ(a.phase(), BatchPhase::kSequential);
  }
}

TEST(Batcher, RestoreRejectsForeignState) {
  auto blocks = random_blocks(9, 9);
  Batcher a(blocks, cfg(3));
  nlohmann::json s = a.state();
  auto err = [&](const nlohmann::json& st, const BatcherConfig& c, std::vector<Block> rows) {
    return error_of([&] { Batcher(rows, c).restore(st); });
  };
  EXPECT_NE(err(s, cfg(4), blocks).find("saved with micro_batch_size = 3 but this run has 4"), std::string::npos);
  auto other = blocks;
  other[4].tokens[0] += 1;
  EXPECT_NE(err(s, cfg(3), other).find("saved with fingerprint"), std::string::npos);
  nlohmann::json bad = s;
  bad["plan"][0][0] = bad["plan"][1][0];
  EXPECT_NE(err(bad, cfg(3), blocks).find("out of range or repeated"), std::string::npos);
  bad = s;
  bad.erase("rng");
  EXPECT_NE(err(bad, cfg(3), blocks).find("\"rng\" is missing"), std::string::npos);
  EXPECT_NE(err(nlohmann::json::object(), cfg(3), blocks).find("not a tpro-batcher state"), std::string::npos);
}

TEST(Batcher, BadConfig) {
  EXPECT_ERROR_HAS(Batcher({}, cfg(2)), "no training blocks to batch");
  EXPECT_ERROR_HAS(Batcher({blk(0, 2)}, cfg(0)), "micro_batch_size must be >= 1");
}

// The schedule holds what the user typed (length_to_sequential, length_to_sequential_at); the
// batcher reads one switch from it. A fractional epoch or step rounds down, below 1 it is off,
// and a huge value saturates instead of overflowing.
TEST(Batcher, LengthScheduleReadsTheSwitchAsTyped) {
  LengthSchedule s{LengthSwitch::kEpoch, 2.7};
  EXPECT_EQ(s.switch_epoch(), 2);
  EXPECT_EQ(s.switch_step(), 0);
  EXPECT_EQ(s.switch_loss(), 0.0);
  EXPECT_TRUE(s.active(true));
  EXPECT_FALSE(s.active(false));
  s.at = 0.5;
  EXPECT_FALSE(s.active(true));
  s.at = 1e12;
  EXPECT_EQ(s.switch_epoch(), 1000000000);
  s = {LengthSwitch::kStep, 1e12};
  EXPECT_EQ(s.switch_step(), 1000000000000);
  EXPECT_EQ(s.switch_epoch(), 0);
  s = {LengthSwitch::kLoss, 0.25};
  EXPECT_EQ(s.switch_loss(), 0.25);
  EXPECT_TRUE(s.active(true));
  s.at = std::nan("");
  EXPECT_FALSE(s.active(true));
  s = {LengthSwitch::kNever, 3};
  EXPECT_FALSE(s.active(true));
  EXPECT_STREQ(length_switch_name(LengthSwitch::kLoss), "loss");
}
