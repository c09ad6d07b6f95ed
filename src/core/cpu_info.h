// How many threads a run uses by default: the physical cores this process may run on, not the
// logical CPUs (two hyperthreads of one core share its FMA units, so a second thread per core
// adds little to the products and contends for cache). OMP_NUM_THREADS, when set, is the user's
// choice and is kept. Parsers take /proc/cpuinfo's text, for tests.
#pragma once
#include <cstdint>
#include <string_view>

namespace tpro {

// Distinct (physical id, core id) pairs among the processors of /proc/cpuinfo's text; 0 when the
// text has no "processor" lines; the processor count when it lacks core ids (e.g. ARM).
int64_t parse_physical_cores(std::string_view cpuinfo);
// The default thread count: physical cores (parse_physical_cores of /proc/cpuinfo), capped by
// the CPUs this process's affinity mask allows; at least 1.
int64_t default_thread_count();
// Sets OpenMP's thread count for this thread's parallel regions: `threads` when > 0, else the
// default, unless OMP_NUM_THREADS is set (then OpenMP's own choice stands). Returns the count set
// (0 when left to OMP_NUM_THREADS).
int64_t apply_thread_count(int64_t threads);

}  // namespace tpro
