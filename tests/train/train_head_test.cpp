// Train Head (lora_modulessave, PEFT modules_to_save) in a training run on the tiny tied
// byte-level Llama: the loss falls, the copies are said (with their memory and the untying of
// a tied model), saved under PEFT's names, counted by the memory plan, resumed exactly from a
// checkpoint (their optimizer state included), and refused with a GGUF adapter or a continued
// adapter trained without them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/error.h"
#include "formats/load.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "quant/qmatrix.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "train/trainer_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

Fixture head_fixture(const std::string& name) {
  Fixture f = make_fixture(name);
  f.p.lora_modulessave = true;
  f.p.training_projection = "q-v";
  f.p.lora_dropout = 0.0;
  f.p.neft_noise_alpha = 0.0;
  return f;
}

}  // namespace

TEST(TrainHead, LossFallsAndTheCopiesAreSavedAsPeftModulesToSave) {
  Fixture f = head_fixture("head_learn");
  f.p.max_steps = 12;
  f.p.warmup_steps = 0;
  f.p.lr_scheduler_type = "constant";
  f.p.learning_rate = 3e-3;
  RunControl ctl;
  Collected c;
  const TrainSummary s = run_training(f.p, ctl, collect(c));
  ASSERT_EQ(c.steps.size(), 12u);
  EXPECT_LT(c.steps.back().loss, c.steps.front().loss - 0.3) << "from " << c.steps.front().loss;
  const Model m = load_model(f.p.model);
  const int64_t VD = m.cfg.vocab_size * m.cfg.n_embd;
  EXPECT_TRUE(said(c, cat("Train Head: full copies of embed_tokens and lm_head (", 2 * VD, " parameters")));
  EXPECT_TRUE(said(c, "note: the model ties lm_head to embed_tokens; Train Head trains them as two separate copies"));
  const AdapterConfig ac = parse_adapter_config(read_file(s.adapter_dir / "adapter_config.json"), "x");
  EXPECT_EQ(ac.modules_to_save, (std::vector<std::string>{"embed_tokens", "lm_head"}));
  SafeTensorsFile st(s.adapter_dir / "adapter_model.safetensors");
  ASSERT_TRUE(st.has("base_model.model.model.embed_tokens.weight"));
  ASSERT_TRUE(st.has("base_model.model.lm_head.weight"));
  // Trained: both moved from the base embedding they started from, each its own way.
  std::vector<float> base(static_cast<size_t>(VD));
  dequantize_rows(m.embed, 0, m.cfg.vocab_size, base.data());
  const float* e = st.view("base_model.model.model.embed_tokens.weight").f32();
  const float* h = st.view("base_model.model.lm_head.weight").f32();
  double de = 0, dh = 0, deh = 0;
  for (int64_t i = 0; i < VD; ++i) {
    de = std::max(de, double(std::abs(e[i] - base[size_t(i)])));
    dh = std::max(dh, double(std::abs(h[i] - base[size_t(i)])));
    deh = std::max(deh, double(std::abs(e[i] - h[i])));
  }
  EXPECT_GT(de, 1e-3);
  EXPECT_GT(dh, 1e-3);
  EXPECT_GT(deh, 1e-3);
  const auto log = nlohmann::json::parse(read_file(s.adapter_dir / "training_log.json"));
  EXPECT_GT(log["lora_params"].get<int64_t>(), 2 * VD);

  // The memory plan counts them: parameters, gradients and AdamW's two moments, on the device
  // and in the host image, 8 floats a value.
  RunControl c2;
  Fixture g = head_fixture("head_plan");
  const size_t with = plan_training_memory(g.p, c2).choice.plan.adapter;
  g.p.lora_modulessave = false;
  const size_t without = plan_training_memory(g.p, c2).choice.plan.adapter;
  EXPECT_GE(with - without, size_t(8 * 4 * 2 * VD));
  EXPECT_LE(with - without, size_t(8 * 4 * 2 * VD + 64));
}

TEST(TrainHead, ResumeIsExact) {
  Fixture a = head_fixture("head_resume_a"), b = head_fixture("head_resume_b");
  for (Fixture* f : {&a, &b}) {
    f->p.max_steps = 4;
    f->p.save_steps = 4;  // every 2 optimizer steps
    f->p.optimizer = "adamw_8bit";
  }
  RunControl c1, c2, c3;
  Collected straight, first, second;
  run_training(a.p, c1, collect(straight));
  run_training(b.p, c2, collect(first, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::Step && e.record.step == 2) c2.request_stop();
  }));
  b.p.resume_from_checkpoint = "latest";
  run_training(b.p, c3, collect(second));
  ASSERT_EQ(straight.steps.size(), 4u);
  ASSERT_EQ(second.steps.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(second.steps[i].loss, straight.steps[i + 2].loss) << "step " << i + 3;
  EXPECT_EQ(read_file(adapter_dir(a.p) / "adapter_model.safetensors"),
            read_file(adapter_dir(b.p) / "adapter_model.safetensors"));
  EXPECT_EQ(read_file(latest_checkpoint(adapter_dir(a.p)) / "optimizer.safetensors"),
            read_file(latest_checkpoint(adapter_dir(b.p)) / "optimizer.safetensors"));

  // Resuming it without Train Head is refused by name.
  b.p.lora_modulessave = false;
  b.p.resume_from_checkpoint = latest_checkpoint(adapter_dir(b.p)).string();
  RunControl c4;
  EXPECT_ERROR_HAS(run_training(b.p, c4, collect(second)),
                   "projections and modules_to_save embed_tokens, lm_head but this run asks for rank 4 on 4 projections "
                   "(hint: resume with the checkpoint's training parameters)");
  // Continuing it without Train Head is refused too.
  b.p.resume_from_checkpoint.clear();
  RunControl c5;
  EXPECT_ERROR_HAS(run_training(b.p, c5, collect(second)),
                   ": the existing adapter trains embed_tokens and lm_head (modules_to_save) and this run does not");
}

TEST(TrainHead, GgufAdapterIsRefusedBeforeTraining) {
  Fixture f = head_fixture("head_gguf");
  f.p.save_gguf = true;
  f.p.max_steps = 1;
  RunControl ctl;
  Collected c;
  EXPECT_ERROR_HAS(run_training(f.p, ctl, collect(c)),
                   "save_gguf cannot write an adapter with lora_modulessave (Train Head): a llama.cpp LoRA adapter "
                   "cannot carry the trained embed_tokens and lm_head");
  EXPECT_TRUE(c.steps.empty());
  EXPECT_FALSE(fs::exists(adapter_dir(f.p)));
}
