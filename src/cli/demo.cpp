// `tpro demo`: the whole pipeline on a built-in default, no downloads. It writes a small
// Llama-architecture model with random weights and a byte-level tokenizer into a folder,
// trains a LoRA on the sample text compiled into the binary (assets/demo/sample.txt),
// prints the falling loss, saves the adapter, and generates a continuation with and without it.
#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "cli/console.h"
#include "core/embedded.h"
#include "core/error.h"
#include "core/log.h"
#include "formats/load.h"
#include "kernels/backend.h"
#include "model/generate.h"
#include "tokenizer/tokenizer.h"
#include "train/byte_level_model.h"
#include "train/trainer.h"

namespace tpro::cli {
namespace {

struct DemoArgs {
  std::string dir, device = "cpu";
  int64_t steps = 0;
  int64_t threads = 0;
};

LlamaConfig demo_config() { return byte_level_llama(128, 352, 4, 4, 2); }

fs::path make_workdir(const std::string& dir) {
  if (!dir.empty()) {
    fs::create_directories(dir);
    return dir;
  }
  std::string tmpl = (fs::temp_directory_path() / "tpro-demo-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) fail("cannot create a temporary folder in ", fs::temp_directory_path().string());
  return tmpl;
}

void show_generation(const Backend& be, const Model& m, const LoraWeights* lw, const Tokenizer& tok, const std::string& prompt,
                     const char* label) {
  Generator g(be, m, lw, 512);
  SamplingParams sp;
  sp.max_new_tokens = 160;
  sp.stop_ids = {kByteLevelEosId};
  auto ids = g.generate(tok.encode(prompt, true), sp);
  std::printf("\n[%s] %s%s\n", label, prompt.c_str(), tok.decode(ids, true).c_str());
}

int run(const DemoArgs& a) {
  const fs::path dir = make_workdir(a.dir);
  const fs::path model_dir = dir / "model";
  log_info("demo folder: ", dir.string());
  write_byte_level_model(model_dir, demo_config(), 1234);
  write_file_atomic(dir / "sample.txt", embedded_file("assets/demo/sample.txt"));
  log_info("wrote a ", demo_config().n_layer, "-layer Llama with random weights and a byte-level tokenizer to ",
           model_dir.string());

  TrainParams p;
  p.model = model_dir.string();
  p.output_dir = dir.string();
  p.lora_name = "demo-lora";
  p.always_override = true;
  p.data.raw_text_file = (dir / "sample.txt").string();
  p.data.cutoff_len = 128;
  p.micro_batch_size = 4;
  p.grad_accumulation = 1;
  p.lora_rank = 16;
  p.lora_alpha = 32;
  p.lora_dropout = 0.0;
  p.training_projection = "all";
  p.learning_rate = 3e-3;
  p.lr_scheduler_type = "cosine";
  p.warmup_steps = 8;
  p.epochs = 40;
  p.max_steps = a.steps;
  p.eval_steps = 0;
  p.save_steps_under_loss = 0;
  p.threads = a.threads;
  p.device = a.device;
  RunControl ctl;
  SignalStopper stopper(ctl);
  TrainSummary s = run_training(p, ctl, console_observer());

  Model m = load_model(model_dir);
  Tokenizer tok = Tokenizer::load(model_dir);
  LoraWeights lw = load_lora(s.adapter_dir, m);
  const std::string prompt = "The lighthouse stood";
  const std::unique_ptr<Backend> be = make_backend(a.device);
  show_generation(*be, m, nullptr, tok, prompt, "base model, no adapter");
  show_generation(*be, m, &lw, tok, prompt, "with the trained LoRA");
  std::printf("\nadapter: %s (final loss %.4f after %lld steps)\n", s.adapter_dir.string().c_str(), s.final_loss,
              static_cast<long long>(s.steps));
  std::printf("try: tpro generate --model %s --lora %s --prompt \"When storms came\" --temperature 0\n",
              model_dir.string().c_str(), s.adapter_dir.string().c_str());
  return 0;
}

Runner setup(CLI::App* sub) {
  auto a = std::make_shared<DemoArgs>();
  sub->add_option("--dir", a->dir, "Folder for the model, data and adapter (default: a new temporary folder)");
  sub->add_option("--steps", a->steps, "Stop after this many optimizer steps (default: 40 epochs)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--threads", a->threads, "CPU threads (0 = the physical cores, or OMP_NUM_THREADS when set)")->check(CLI::NonNegativeNumber);
  sub->add_option("--device", a->device, "Where the model runs (this build: cpu)")->default_val("cpu");
  return [a] { return run(*a); };
}

TPRO_COMMAND("demo", "Train a LoRA on a built-in tiny model and sample text, then generate (no downloads)", setup);

}  // namespace
}  // namespace tpro::cli
