// One optimizer step of LoRA training: forward + backward over every micro-batch of the
// accumulated batch (loss = mean over all its trained tokens, whatever their micro-batch),
// global-norm gradient clipping, then the update of the LoraState's optimizer (AdamW, SGD,
// Adagrad, Adafactor, Lion or 8-bit AdamW), all on the activations' Backend. Also the
// no-gradient evaluation loss.
// The trainer loop (trainer.h) owns data order, schedules, checkpoints and logs.
#pragma once
#include <cstdint>
#include <span>

#include "core/batch.h"
#include "kernels/backend.h"
#include "model/step.h"

namespace tpro {

// Hyper-parameters of every optimizer; the LoraState's optim() picks which one runs, and the
// step's lr replaces each lr.
struct OptimConfig {
  AdamWHyper adam;  // AdamW and 8-bit AdamW
  SgdHyper sgd;
  AdagradHyper adagrad;
  AdafactorHyper adafactor;
  LionHyper lion;
  double max_grad_norm = 1.0;  // 0 = no clipping
  // LoRA+: B matrices and magnitude vectors learn at lr·ratio, A matrices at lr; 0 = off (one lr).
  double loraplus_lr_ratio = 0.0;
  double neftune_alpha = 0.0;
  const CancelFlag* cancel = nullptr;  // a stop abandons the step (Cancelled) before any update
};

struct StepStats {
  double loss = 0.0;       // mean −log p over the trained tokens of the whole step
  double grad_norm = 0.0;  // before clipping
  int64_t n_trained = 0, n_tokens = 0;
  // False when the loss or the gradient norm is NaN or infinite: then no update was made
  // (parameters and moments are as before the step) and the caller must not go on.
  bool finite = true;
};

// `step` is the 1-based optimizer step (bias corrections, Adafactor's β2ₜ, SGD's first momentum); `seed` makes dropout and
// NEFTune noise reproducible (resume-exact). lr is the learning rate for this step.
StepStats optimizer_step(const Model& m, LoraState& lw, Activations& a, std::span<const BatchView> micro,
                         double lr, int64_t step, uint64_t seed, const OptimConfig& cfg);

// Mean −log p over the trained tokens of `batches` (no dropout, no gradient); n_trained out.
double evaluate_loss(const Model& m, const LoraState* lw, Activations& a, std::span<const BatchView> batches,
                     int64_t* n_trained = nullptr);

}  // namespace tpro
