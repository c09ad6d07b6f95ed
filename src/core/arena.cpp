// Arena allocation; see arena.h.
#include "core/arena.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace tpro {

void Arena::Free::operator()(void* p) const { std::free(p); }

void Arena::allocate() {
  used_ = 0;
  if (planned_ == 0) {
    mem_.reset();
    return;
  }
  void* p = std::aligned_alloc(64, planned_);
  if (!p) fail("out of memory allocating ", planned_ / (1 << 20), " MiB of activations");
  std::memset(p, 0, planned_);
  mem_.reset(static_cast<uint8_t*>(p));
}

void* Arena::take(size_t bytes) {
  size_t b = round_up(bytes);
  TPRO_CHECK(used_ + b <= planned_, "arena overflow: ", used_ + b, " > ", planned_);
  void* p = mem_.get() + used_;
  used_ += b;
  return p;
}

float* aligned_floats(size_t n) {
  size_t bytes = ((n * sizeof(float)) + 63) & ~size_t(63);
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) fail("out of memory allocating ", bytes, " bytes");
  std::memset(p, 0, bytes);
  return static_cast<float*>(p);
}

void free_aligned(void* p) { std::free(p); }

}  // namespace tpro
