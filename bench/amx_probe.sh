#!/usr/bin/env bash
# Builds and runs bench/amx_probe.cpp: the raw AMX bf16 rate, and oneDNN's matmul against a
# naive AMX tile kernel on tpro's projection shapes. Needs an AMX CPU and libdnnl-dev.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
grep -q amx_bf16 /proc/cpuinfo || { echo "no AMX on this CPU"; exit 1; }
g++ -O2 -std=c++17 -fopenmp -mamx-tile -mamx-bf16 "$(dirname "$0")/amx_probe.cpp" -o "$out/amx_probe" -ldnnl
lscpu | grep -E "^Model name|^CPU\(s\)"
for round in 1 2 3; do
  echo "== round $round"
  "$out/amx_probe"
done
