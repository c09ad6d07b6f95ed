// One aligned allocation carved into named buffers: activations and scratch are sized from
// (config, B, T) once, so the step loop never allocates. Buffers are 64-byte aligned.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace tpro {

class Arena {
 public:
  Arena() = default;
  // Two-pass use: first call reserve() for every buffer to learn the size, then allocate(),
  // then take() in the same order to receive pointers.
  void reserve(size_t bytes) { planned_ += round_up(bytes); }
  void allocate();                    // allocates planned bytes (zeroed)
  void* take(size_t bytes);           // next buffer; checks against the plan
  float* take_f32(size_t n) { return static_cast<float*>(take(n * sizeof(float))); }
  size_t bytes() const { return planned_; }
  void reset_cursor() { used_ = 0; }

 private:
  static size_t round_up(size_t b) { return (b + 63) & ~size_t(63); }
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<uint8_t, Free> mem_;
  size_t planned_ = 0, used_ = 0;
};

// Owned, 64-byte aligned float storage that zero-initialises (for LoRA params, grads, moments).
float* aligned_floats(size_t n);  // free with free_aligned
void free_aligned(void* p);

}  // namespace tpro
