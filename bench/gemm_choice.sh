#!/usr/bin/env bash
# Compares GEMM libraries on tpro's shapes (GFLOP/s): OpenBLAS (OpenMP and pthread builds, the
# same binary loading the other libopenblas.so.0 through LD_LIBRARY_PATH) with
# OPENBLAS_CORETYPE=Haswell and unset, and oneDNN (dnnl_sgemm and the matmul primitive tpro uses,
# f32 and bf16). Installs what it needs (libopenblas-openmp-dev, libopenblas0-pthread, libdnnl-dev).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
for p in libopenblas-openmp-dev libopenblas0-pthread libdnnl-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lib=/usr/lib/x86_64-linux-gnu
g++ -O2 -fopenmp "$(dirname "$0")/gemm_choice.cpp" -o "$out/gemm_choice" \
    -I/usr/include/x86_64-linux-gnu/openblas-openmp -L$lib/openblas-openmp -lopenblas -ldnnl
run() {
  echo "== $1"
  shift
  env "$@" "$out/gemm_choice"
}
lscpu | grep -E "^Model name|^CPU\(s\)"
for variant in openmp pthread; do
  run "OpenBLAS $variant build, OPENBLAS_CORETYPE=Haswell" OPENBLAS_CORETYPE=Haswell LD_LIBRARY_PATH=$lib/openblas-$variant
  run "OpenBLAS $variant build, OPENBLAS_CORETYPE unset" -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=$lib/openblas-$variant
done
