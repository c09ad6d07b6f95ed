// Learning-rate schedules as pure functions of the optimizer step: Hugging Face's seven
// (transformers/optimization.py, LambdaLR semantics) and Training PRO's five FP_* curves
// (text-generation-webui extensions/Training_PRO/custom_scheduler.py). No state, no optimizer:
// the trainer asks lr_at(spec, s) before optimizer update s (0-based), exactly what LambdaLR
// gives after s calls to scheduler.step(): base_lr * lambda(s).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tpro {

enum class SchedulerType {
  Linear,
  Constant,
  ConstantWithWarmup,
  Cosine,
  CosineWithRestarts,
  Polynomial,
  InverseSqrt,
  FpLowEpochAnnealing,    // warmup, hold for epoch 1, cosine to 0 over the rest
  FpHalfTimeAnnealing,    // warmup, hold for half the steps, cosine to 0 over the other half
  FpRaiseFallCreative,    // cosine hump: rise to the midpoint, fall to 0 (warmup ignored)
  Fp3EpochRaiseHoldFall,  // rise over epoch 1, hold over epoch 2, cosine fall over the rest
  FpStepDecayWithWarmup,  // warmup, hold for epoch 1, then halve every epoch
};

// Names as Training PRO's dropdown spells them ("linear", ..., "FP_step_decay_with_warmup").
const std::vector<std::string>& scheduler_names();
std::string_view scheduler_name(SchedulerType t);
// Throws Error "unknown lr_scheduler_type 'x' (expected one of ...)" with a did-you-mean hint.
SchedulerType scheduler_from_name(std::string_view name);

struct SchedulerSpec {
  SchedulerType type = SchedulerType::Linear;
  double base_lr = 3e-4;
  int64_t total_steps = 0;      // optimizer updates in the whole run (HF num_training_steps)
  int64_t warmup_steps = 0;     // optimizer updates; > 0 wins over warmup_ratio (as in HF)
  double warmup_ratio = 0.0;    // used when warmup_steps == 0: ceil(total_steps * ratio)
  double epochs = 0.0;          // FP_* curves: an epoch is ceil(total_steps / epochs) steps...
  int64_t steps_per_epoch = 0;  // ...unless this is > 0
  double num_cycles = 0.0;      // 0 = HF default: 0.5 for cosine, 1 for cosine_with_restarts
  double power = 1.0;           // polynomial
  double lr_end = 1e-7;         // polynomial: final lr (must be < base_lr)
  int64_t timescale = 0;        // inverse_sqrt: 0 = HF default (warmup steps, or 10000)
};

int64_t resolved_warmup_steps(const SchedulerSpec& s);
int64_t resolved_steps_per_epoch(const SchedulerSpec& s);  // 0 when unknown (no epochs)

// Throws Error naming the field when the spec cannot produce a sane curve (negative counts,
// polynomial lr_end >= base_lr, FP_* without epochs, FP_3epoch_raise_hold_fall below 3 epochs).
void validate_scheduler(const SchedulerSpec& s);

// lambda(step): the multiplier of base_lr for optimizer update `step` (0-based). Total: never
// divides by zero, never negative, even on specs validate_scheduler() rejects.
double lr_factor(const SchedulerSpec& s, int64_t step);
inline double lr_at(const SchedulerSpec& s, int64_t step) { return s.base_lr * lr_factor(s, step); }

// One line for the console: "cosine: warmup 0-10, decay 10-200" (phases in optimizer steps).
std::string describe_schedule(const SchedulerSpec& s);

}  // namespace tpro
