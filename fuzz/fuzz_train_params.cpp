// Fuzzes training parameters from files: the input as a YAML run config (load_yaml_file) and
// as an adapter's training_parameters.json (copy_params_from), each validated and then used
// the way a run uses them (adapter folder, targets, accumulation, warm-up, scheduler).
// Expected outcome for bad input: tpro::Error naming the key.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "train/params.h"

using namespace tpro;

namespace {

void use(const TrainParams& p) {
  validate(p);
  (void)to_json(p);
  (void)adapter_dir(p);
  (void)resolved_target_modules(p);
  (void)effective_grad_accumulation(p);
  (void)optimizer_warmup_steps(p);
  const SchedulerSpec s = make_scheduler_spec(p, 100, 10);
  validate_scheduler(s);
  for (int64_t step : {0, 1, 50, 99, 100}) (void)lr_at(s, step);
  (void)describe_schedule(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const fs::path yaml = fuzz::scratch_dir() / "run.yaml";
  const fs::path dir = fuzz::scratch_dir() / "adapter";
  static const bool made = fs::create_directories(dir);
  (void)made;
  fuzz::put_file(yaml, text);
  fuzz::put_file(dir / "training_parameters.json", text);
  try {
    TrainParams p;
    load_yaml_file(yaml, p);
    use(p);
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  try {
    TrainParams p;  // what the command line gives besides --copy_params_from (never copied)
    p.model = "m";
    p.lora_name = "fuzz";
    (void)copy_params_from(dir, p);
    use(p);
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
