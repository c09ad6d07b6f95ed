#!/bin/sh
# Peak memory of QLoRA training on a ~1B Llama-shaped model on CPU (see qlora_memory.cpp).
# Usage: bench/qlora_memory.sh [BUILD_DIR] [WORK_DIR] [QUANT...]   (defaults: build, /tmp/tpro-qlora-bench, nf4)
# Builds the benchmark, writes the random bf16 model once (1.7 GB), then trains 2 LoRA steps
# of 64 tokens per quantize option, each in a fresh process, and prints its RESULT line.
set -eu
build=${1:-build}
work=${2:-/tmp/tpro-qlora-bench}
shift $(( $# > 2 ? 2 : $# ))
quants=${*:-nf4}
ninja -C "$build" bench_qlora_memory
bin="$build/bench/bench_qlora_memory"
[ -f "$work/model/model.safetensors" ] || "$bin" write "$work/model"
"$bin" table
for q in $quants; do
  echo "== quantize=$q"
  "$bin" train "$work/model" "$q" 2 64
done
