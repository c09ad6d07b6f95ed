#!/usr/bin/env bash
# Builds and runs bench/product_shapes.cpp (Release build in $BUILD, default build): tpro's GEMM
# on the step's frozen-projection shapes, separate against merged, and the rank-16 LoRA products
# in f32 and bf16. Three rounds, since this VM's speed drifts.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" --target bench_product_shapes
lscpu | grep -E "^Model name|^CPU\(s\)"
for round in 1 2 3; do
  echo "== round $round"
  "$BUILD/bench/bench_product_shapes"
done
