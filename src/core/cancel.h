// Cooperative cancellation: a long phase (loading weights, slicing text, building rows,
// allocating activations, a training step) polls a flag that a stop request sets and ends with
// Cancelled, so a job can be stopped at every moment, not only between optimizer steps.
// Not here: who sets the flag (train/run_control.h) or what a stopped job keeps.
#pragma once
#include <atomic>

#include "core/error.h"

namespace tpro {

using CancelFlag = std::atomic<bool>;

// A stop requested while a phase ran; the message says which phase ("stopped while loading ...").
class Cancelled : public Error {
 public:
  using Error::Error;
};

// Throws Cancelled("stopped while <doing>") when flag is set; null = never cancelled.
template <typename... Args>
inline void check_cancel(const CancelFlag* flag, const Args&... doing) {
  if (flag && flag->load(std::memory_order_relaxed)) throw Cancelled(cat("stopped while ", doing...));
}

}  // namespace tpro
