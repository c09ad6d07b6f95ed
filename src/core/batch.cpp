// Trained-target count of a batch view; see batch.h.
#include "core/batch.h"

namespace tpro {

int64_t count_trained(const BatchView& b) {
  int64_t n = 0;
  for (int64_t r = 0; r < b.B; ++r)
    for (int64_t t = 1; t < b.T; ++t) n += b.mask ? (b.mask[r * b.T + t] != 0) : 1;
  return n;
}

}  // namespace tpro
