// The length-then-sequential schedule is visible: when the batch order leaves the length-grouped
// phase, the run says so (console, web UI messages) and training_log.json records it in "events".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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
