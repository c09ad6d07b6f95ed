#!/usr/bin/env bash
# Compares SGEMM libraries on tpro's shapes: the OpenBLAS OpenMP and pthread builds (the same
# binary loading the other libopenblas.so.0 through LD_LIBRARY_PATH), with OPENBLAS_CORETYPE=Haswell
# and unset, and oneDNN. Needs libopenblas-openmp-dev, libopenblas0-pthread and libdnnl-dev.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lib=/usr/lib/x86_64-linux-gnu
g++ -O2 "$(dirname "$0")/gemm_choice.cpp" -o "$out/gemm_choice" -I/usr/include/x86_64-linux-gnu/openblas-openmp \
    -L$lib/openblas-openmp -lopenblas -ldnnl
run() {
  echo "== $1"
  shift
  env "$@" "$out/gemm_choice"
}
for variant in openmp pthread; do
  run "OpenBLAS $variant build, OPENBLAS_CORETYPE=Haswell" OPENBLAS_CORETYPE=Haswell LD_LIBRARY_PATH=$lib/openblas-$variant
  run "OpenBLAS $variant build, OPENBLAS_CORETYPE unset" -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=$lib/openblas-$variant
done
