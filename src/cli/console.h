// Console output of a training run: messages as they come, and one progress line per step
// (rewritten in place on a terminal, printed every few seconds otherwise).
#pragma once
#include "train/trainer.h"

namespace tpro::cli {

TrainObserver console_observer();

}  // namespace tpro::cli
