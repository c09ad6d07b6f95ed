// Checkpoint loading refuses a trainer_state.json that lies (wrong types, numbers beyond double
// or int64, not an object) with an Error naming the file, never a nlohmann exception or
// undefined behaviour. The save/resume round trip is tested in trainer_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/tiny_config.h"
#include "core/file.h"
#include "core/rng.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "train/checkpoint.h"
#include "common/test_util.h"

using namespace tpro;

TEST(Checkpoint, LyingTrainerStateIsAnError) {
  const fs::path root = fs::temp_directory_path() / ("tpro_checkpoint_" + std::to_string(::getpid()));
  fs::remove_all(root);
  write_random_model(root / "base", test::tiny_config(8, 16, 16), 1, DType::F32);
  const Model m = load_model(root / "base");
  LoraConfig lc;
  lc.r = 2;
  lc.targets = parse_targets("q,v");
  Rng rng(1);
  LoraWeights lw = make_lora(m.cfg, lc, rng);
  TrainerState st;
  st.step = 3;
  const fs::path ck = save_checkpoint(root / "run", lw, st, RunLog(), nlohmann::json::object(), "base");
  const fs::path sp = ck / "trainer_state.json";
  EXPECT_EQ(load_checkpoint(ck, m, lw, nullptr).step, 3);

  const std::pair<const char*, const char*> cases[] = {
      {R"({"step": 1e400})", "trainer_state.json: not valid JSON: [json.exception.out_of_range.406] number overflow"},
      {R"({"step": "3"})", "trainer_state.json: 'step' must be a number, got string"},
      {R"({"step": 1, "loss": [1]})", "trainer_state.json: 'loss' must be a number, got array"},
      {R"({"step": 1e300})", "trainer_state.json: 'step' must be a whole number >= 0, got 1e+300"},
      {R"({"step": -1})", "'step' must be a whole number >= 0, got -1"},
      {R"([1, 2])", "trainer_state.json: expected a JSON object, got array"},
  };
  for (const auto& [text, want] : cases) {
    write_file_atomic(sp, text);
    EXPECT_ERROR_HAS(load_checkpoint(ck, m, lw, nullptr), want) << text;
  }
  fs::remove_all(root);
}
