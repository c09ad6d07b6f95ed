#!/bin/sh
# Memory saved by quantize_embedding / quantize_head on the Llama-3.2-1B shape (hidden 2048, 16
# layers, 32/8 heads, FFN 8192, vocab 128256, tied), NF4 projections; see qlora_memory.cpp.
# Usage: bench/qlora_vocab_memory.sh [BUILD_DIR] [WORK_DIR] [VOCAB...]
#        (defaults: build, /tmp/tpro-vocab-bench, none q8_0 q6_k)
# Writes the random bf16 model once (2.5 GB), then trains 2 LoRA steps of 64 tokens per type of
# the tied embedding/head, each in a fresh process, and prints its RESULT line (peak RSS).
set -eu
build=${1:-build}
work=${2:-/tmp/tpro-vocab-bench}
shift $(( $# > 2 ? 2 : $# ))
vocabs=${*:-none q8_0 q6_k}
ninja -C "$build" bench_qlora_memory
bin="$build/bench/bench_qlora_memory"
[ -f "$work/model/model.safetensors" ] || "$bin" write-l32 "$work/model"
"$bin" table-vocab
for v in $vocabs; do
  echo "== quantize=nf4 vocab=$v"
  "$bin" train-vocab "$work/model" nf4 "$v" 2 64
done
