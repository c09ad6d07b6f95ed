// The length-then-sequential schedule is visible: when the batch order leaves the length-grouped
// phase, the run says so (console, web UI messages), training_log.json records it in "events",
// training_graph.json carries a marker on the step that began the new order (for the web
// chart and a resumed run) and training_graph.png draws it. The loss trigger takes a range.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "train/graph.h"
#include "train/run_control.h"
#include "trainer_test_util.h"

namespace tpro::test {
namespace {

using ::testing::HasSubstr;

TEST(BatchOrder, TheSwitchToSequentialIsSaidAndLogged) {
  Fixture f = make_fixture("batch_order");
  f.p.data.group_by_length = true;
  f.p.data.length_schedule.to_sequential = LengthSwitch::kEpoch;
  f.p.data.length_schedule.at = 1;
  f.p.epochs = 2;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  std::vector<std::string> said;
  for (const auto& m : c.messages)
    if (m.rfind("batch order: ", 0) == 0) said.push_back(m);
  ASSERT_EQ(said.size(), 1u) << "one switch, said once";
  EXPECT_THAT(said[0], HasSubstr("batch order: sequential from epoch 1, micro-batch 0 (after step "));
  EXPECT_THAT(said[0], HasSubstr("; trigger: epoch)"));
  const auto log = nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
  ASSERT_TRUE(log.contains("events")) << log.dump();
  ASSERT_EQ(log["events"].size(), 1u);
  EXPECT_EQ(log["events"][0]["kind"], "batch_order");
  EXPECT_EQ(log["events"][0]["message"], said[0]);

  // training_graph.json: exactly one record carries the marker, at epoch 1 where the new order
  // began; the web chart reads the same through chart_record.
  const auto graph = nlohmann::json::parse(read_file(s.adapter_dir / "training_graph.json"));
  int marked = 0;
  for (const auto& e : graph) {
    if (!e.contains("markers")) continue;
    ++marked;
    ASSERT_EQ(e["markers"].size(), 1u);
    EXPECT_EQ(e["markers"][0]["kind"], "batch_order");
    EXPECT_EQ(e["markers"][0]["label"], "order: sequential");
    EXPECT_DOUBLE_EQ(e["markers"][0]["epoch"].get<double>(), 1.0);
    EXPECT_GT(e["epoch"].get<double>(), 1.0);  // the first step of the new order
    EXPECT_THAT(said[0], HasSubstr("(after step " + std::to_string(e["current_steps"].get<int64_t>()) + ";"));
  }
  EXPECT_EQ(marked, 1);
  // The observer's step records carry it too (what the server streams).
  int streamed = 0;
  for (const auto& r : c.steps) streamed += int(r.markers.size());
  EXPECT_EQ(streamed, 1);
}

// A loss range: the order switches at the first step whose loss is within [min, at]. Every
// loss of this run is far above 1e-3 and far below 1e6: [1e-3, 1e6] switches after step 1
// (the switch takes the next micro-batch, so it is said after step 2); [1e5, 1e6] never does.
TEST(BatchOrder, TheLossTriggerTakesARange) {
  Fixture f = make_fixture("batch_order_loss_range");
  f.p.data.group_by_length = true;
  f.p.data.length_schedule.to_sequential = LengthSwitch::kLoss;
  f.p.data.length_schedule.at = 1e6;
  f.p.data.length_schedule.loss_min = 1e-3;
  f.p.max_steps = 3;
  RunControl ctl;
  Collected c;
  TrainSummary s = run_training(f.p, ctl, collect(c));
  ASSERT_GE(c.steps.size(), 2u);
  EXPECT_TRUE(c.steps[0].markers.empty());
  ASSERT_EQ(c.steps[1].markers.size(), 1u);
  EXPECT_TRUE(said(c, "batch order: sequential from epoch 0, micro-batch 2 (after step 2; trigger: loss)"));

  Fixture g = make_fixture("batch_order_loss_range_never");
  g.p.data.group_by_length = true;
  g.p.data.length_schedule.to_sequential = LengthSwitch::kLoss;
  g.p.data.length_schedule.at = 1e6;
  g.p.data.length_schedule.loss_min = 1e5;
  g.p.max_steps = 3;
  Collected d;
  s = run_training(g.p, ctl, collect(d));
  EXPECT_FALSE(said(d, "batch order: "));
  const auto log = nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
  EXPECT_FALSE(log.contains("events"));
}

TEST(BatchOrder, NoScheduleNoEvents) {
  Fixture f = make_fixture("batch_order_none");
  f.p.max_steps = 2;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  const auto log = nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
  EXPECT_FALSE(log.contains("events"));
}

}  // namespace
}  // namespace tpro::test
