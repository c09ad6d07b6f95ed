// The benchmarks' timing loop: the best (lowest) of `samples` timings of `calls` back-to-back
// calls of f, in seconds per call. The minimum, not the mean: on a shared VM the noise only
// ever adds time.
#pragma once
#include <algorithm>
#include <chrono>

template <typename F>
double best_of(F f, int samples = 9, int calls = 1) {
  double best = 1e300;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < calls; ++c) f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls);
  }
  return best;
}
