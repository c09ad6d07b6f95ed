// When a loop is worth an OpenMP parallel region: below ~32k element-operations the fork/join
// costs more than the work, and on a loaded machine a spinning team can stall on a
// descheduled thread for milliseconds.
#pragma once
#include <cstdint>

namespace tpro {

inline bool worth_parallel(int64_t work) { return work >= (int64_t(1) << 15); }

}  // namespace tpro
