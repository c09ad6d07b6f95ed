#!/usr/bin/env bash
# One command: build tpro-bench (Release) and compare it with the PyTorch reference.
# Needs Debian's python3-torch; see bench/run.py --help for options.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" --target tpro-bench
exec /usr/bin/python3 bench/run.py --build "$BUILD" "$@"
