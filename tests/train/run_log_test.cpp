// train/run_log: training_graph.json / training_log.json contents and round trip, bad graph
// files, and the console progress line (times, rates, number formats).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "core/error.h"
#include "core/file.h"
#include "train/run_log.h"
#include "common/test_util.h"

using namespace tpro;
using tpro::test::error_of;
using ::testing::HasSubstr;
using json = nlohmann::json;

namespace {

LogRecord rec(int64_t step, double epoch, double loss, double lr, double grad = NAN) {
  LogRecord r;
  r.step = step;
  r.epoch = epoch;
  r.loss = loss;
  r.lr = lr;
  r.grad_norm = grad;
  r.elapsed_s = double(step) * 2.0;
  r.tokens_per_s = 500;
  return r;
}

}  // namespace

TEST(RunLog, GraphAndLogJson) {
  RunLog log;
  log.set_info("base_model_name", "tiny-llama");
  log.add(rec(1, 0.1, 2.5, 1e-4, 0.9));
  log.add(rec(2, 0.2, 1.75, 2e-4, 0.7));
  log.add(rec(3, 0.3, 2.0, 3e-4));
  log.add_eval(3, 0.3, 2.25);
  json g = log.graph_json();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0], (json{{"current_steps", 1}, {"epoch", 0.1}, {"loss", 2.5}, {"learning_rate", 1e-4},
                        {"grad_norm", 0.9}, {"tokens_per_second", 500.0}, {"elapsed", 2.0}}));
  EXPECT_FALSE(g[2].contains("grad_norm"));
  EXPECT_EQ(g[2]["eval_loss"], 2.25);
  json l = log.log_json();
  EXPECT_EQ(l["base_model_name"], "tiny-llama");
  EXPECT_EQ(l["current_steps"], 3);
  EXPECT_EQ(l["epoch"], 0.3);
  EXPECT_EQ(l["loss"], 2.0);
  EXPECT_EQ(l["learning_rate"], 3e-4);
  EXPECT_EQ(l["grad_norm"], 0.7);  // the last one measured
  EXPECT_EQ(l["eval_loss"], 2.25);
  EXPECT_EQ(l["min_loss"], 1.75);
  EXPECT_EQ(l["min_loss_step"], 2);
  EXPECT_EQ(l["train_runtime"], 6.0);
}

TEST(RunLog, EvalBeforeFirstStepAndOrdering) {
  RunLog log;
  log.add_eval(0, 0.0, 3.1);
  log.add(rec(1, 0.1, 2.9, 1e-4));
  ASSERT_EQ(log.records().size(), 2u);
  EXPECT_TRUE(log.graph_json()[0]["loss"].is_null());  // still present: Training PRO reads item['loss']
  EXPECT_EQ(log.graph_json()[0]["eval_loss"], 3.1);
  std::string msg = error_of([&] { log.add(rec(0, 0.0, 1.0, 1e-4)); });
  EXPECT_NE(msg.find("step 0 logged after step 1"), std::string::npos) << msg;
}

TEST(RunLog, WritesBothFilesAtomicallyAndLoadsBack) {
  fs::path dir = fs::temp_directory_path() / ("tpro_runlog_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  RunLog log;
  for (int i = 1; i <= 5; ++i) log.add(rec(i, i / 5.0, 3.0 - 0.25 * i, 1e-4 * i, 0.5));
  log.add_eval(5, 1.0, 2.0);
  log.write(dir);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) (void)e, ++files;
  EXPECT_EQ(files, 2);  // no temp files left behind
  EXPECT_EQ(json::parse(read_file(dir / "training_log.json"))["current_steps"], 5);
  RunLog back = RunLog::load(dir);
  EXPECT_EQ(back.graph_json(), log.graph_json());
  write_file_atomic(dir / "training_graph.json", "[{\"current_steps\": 1, \"learning_rate\": 1e-4}]");
  std::string msg = error_of([&] { RunLog::load(dir); });
  EXPECT_NE(msg.find("training_graph.json: entry 0 has no 'epoch'"), std::string::npos) << msg;
  write_file_atomic(dir / "training_graph.json", "[{\"current_steps\": 1, \"epoch\": 0, \"loss\": \"x\", \"learning_rate\": 1}]");
  msg = error_of([&] { RunLog::load(dir); });
  EXPECT_NE(msg.find("entry 0: 'loss' must be a number, got \"x\""), std::string::npos) << msg;
  write_file_atomic(dir / "training_graph.json", "{}");
  EXPECT_ERROR_HAS(RunLog::load(dir), "expected a list of log entries, got object");
  write_file_atomic(dir / "training_graph.json", "[1,");
  EXPECT_ERROR_HAS(RunLog::load(dir), "invalid JSON at byte");
  fs::remove_all(dir);
}

TEST(RunLog, ReadsTrainingProGraph) {
  // Training PRO writes {current_steps, loss, learning_rate, epoch} only.
  json tp = json::parse(R"([{"current_steps": 0, "loss": 2.41, "learning_rate": 0.0, "epoch": 0.01},
                            {"current_steps": 8, "loss": 2.2, "learning_rate": 3e-06, "epoch": 0.04}])");
  RunLog log = RunLog::from_graph_json(tp);
  ASSERT_EQ(log.records().size(), 2u);
  EXPECT_EQ(log.records()[1].step, 8);
  EXPECT_DOUBLE_EQ(log.records()[1].lr, 3e-6);
  EXPECT_TRUE(std::isnan(log.records()[1].grad_norm));
}

TEST(Progress, FormatsHms) {
  EXPECT_EQ(format_hms(0), "0:00:00");
  EXPECT_EQ(format_hms(59.4), "0:00:59");
  EXPECT_EQ(format_hms(59.6), "0:01:00");
  EXPECT_EQ(format_hms(3661), "1:01:01");
  EXPECT_EQ(format_hms(100000), "27:46:40");
  EXPECT_EQ(format_hms(-5), "0:00:00");
  EXPECT_EQ(format_hms(NAN), "-:--:--");
  EXPECT_EQ(format_hms(INFINITY), "-:--:--");
}

TEST(Progress, OneLine) {
  Progress p;
  p.step = 120;
  p.total_steps = 1000;
  p.epoch = 0.36;
  p.elapsed_s = 80;  // 1.5 it/s, 880 steps left: 586.7 s
  p.loss = 1.83421;
  p.lr = 2.85e-4;
  p.grad_norm = 0.41234;
  p.tokens_per_s = 812.4;
  EXPECT_EQ(format_progress(p),
            "step 120/1000 (12.0%) | epoch 0.36 | 1.50 it/s | 0:01:20 < 0:09:47 | loss 1.8342 | lr 2.85e-04 | "
            "grad 0.412 | 812 tok/s");
  p.step = 3;
  p.elapsed_s = 9.63;  // 3.21 s per step
  p.tokens_per_s = 0;
  p.grad_norm = NAN;
  EXPECT_EQ(format_progress(p),
            "step 3/1000 (0.3%) | epoch 0.36 | 3.21 s/it | 0:00:10 < 0:53:20 | loss 1.8342 | lr 2.85e-04 | grad -");
  Progress start;
  start.total_steps = 50;
  EXPECT_EQ(format_progress(start), "step 0/50 (0.0%) | epoch 0.00 | - it/s | 0:00:00 < -:--:-- | loss - | lr 0.00e+00 | grad -");
  Progress open_ended;
  open_ended.step = 10;
  open_ended.elapsed_s = 5;
  open_ended.loss = 2;
  open_ended.lr = 1e-3;
  EXPECT_EQ(format_progress(open_ended), "step 10 | epoch 0.00 | 2.00 it/s | 0:00:05 < -:--:-- | loss 2.0000 | lr 1.00e-03 | grad -");
}

// Found while fuzzing (fuzz/fuzz_checkpoint): a number beyond double escaped as nlohmann's out_of_range.
TEST(RunLog, NumberBeyondDoubleIsAnError) {
  const fs::path dir = fs::temp_directory_path() / ("tpro_runlog_huge_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_file_atomic(dir / "training_graph.json", "[{\"current_steps\": 1, \"epoch\": 1e400}]");
  const std::string msg = error_of([&] { RunLog::load(dir); });
  EXPECT_NE(msg.find("training_graph.json: invalid JSON ([json.exception.out_of_range.406] number overflow"),
            std::string::npos)
      << msg;
  fs::remove_all(dir);
}

// Markers (the batch order's switch) ride on their record in training_graph.json, come back on
// resume, and a malformed one is an error naming the entry.
TEST(RunLog, MarkersRoundTripAndBadOnesAreErrors) {
  RunLog log;
  LogRecord r = rec(1, 0.5, 2.0, 1e-4, 0.5);
  log.add(r);
  r = rec(2, 1.0, 1.9, 1e-4, 0.5);
  r.markers.push_back({"batch_order", "order: sequential", 0.75});
  log.add(r);
  json g = log.graph_json();
  EXPECT_FALSE(g[0].contains("markers"));
  EXPECT_EQ(g[1]["markers"], json::parse(R"([{"kind": "batch_order", "label": "order: sequential", "epoch": 0.75}])"));
  RunLog back = RunLog::from_graph_json(g);
  ASSERT_EQ(back.records()[1].markers.size(), 1u);
  EXPECT_EQ(back.records()[1].markers[0], (LogMarker{"batch_order", "order: sequential", 0.75}));
  EXPECT_EQ(back.graph_json(), g);

  auto bad = [](const char* markers) {
    json e = json::parse(R"({"current_steps": 1, "epoch": 0, "learning_rate": 1})");
    e["markers"] = json::parse(markers);
    return error_of([&] { RunLog::from_graph_json(json::array({e}), "g.json"); });
  };
  EXPECT_THAT(bad("{}"), HasSubstr("g.json: entry 0: 'markers' must be a list, got object"));
  EXPECT_THAT(bad(R"([{"kind": "batch_order", "epoch": 1}])"), HasSubstr("g.json: entry 0: markers[0] needs a string 'label'"));
  EXPECT_THAT(bad(R"([{"kind": "k", "label": "l", "epoch": "1"}])"), HasSubstr("markers[0] needs a number 'epoch'"));
}
