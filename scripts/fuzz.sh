#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang++ with ASan + UBSan, in build-fuzz/) and runs each
# for N seconds, one after another on one core, starting from the seeds in fuzz/corpus/<target>/
# (new inputs go to build-fuzz/corpus/<target>/, never into the repo). Exits non-zero when any
# harness finds a crash, a sanitizer report, an escaping non-tpro exception, a timeout or an
# out-of-memory; the reproducer is build-fuzz/artifacts/<target>-crash-* (rerun it with
# build-fuzz/fuzz/fuzz_<target> <file>). Results of the long runs: docs/RELIABILITY.md.
#   scripts/fuzz.sh [seconds] [target ...]   seconds per harness (default 60); targets: all
#   scripts/fuzz.sh --seeds                  rewrites fuzz/corpus/ and fuzz/dict/ (fuzz_make_seeds)
# Environment: FUZZ_BUILD (build-fuzz), FUZZ_JOBS (build jobs, nproc), FUZZ_LOG_DIR (per-target
# logs; default build-fuzz/logs), FUZZ_SEED (libFuzzer's -seed; make test fixes it, default random).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS_ALL=(safetensors gguf tokenizer_json peft_adapter gguf_adapter torch_pickle checkpoint jinja train_params
             dataset_rows)
# Longest input per target: above its largest seed, small enough to keep executions fast.
declare -A MAX_LEN=([safetensors]=8192 [gguf]=16384 [tokenizer_json]=16384 [peft_adapter]=12288
                    [gguf_adapter]=12288 [torch_pickle]=8192 [checkpoint]=16384 [jinja]=8192 [train_params]=4096
                    [dataset_rows]=4096)

BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${FUZZ_JOBS:-$(nproc)}
LOG_DIR=${FUZZ_LOG_DIR:-$BUILD/logs}

configure_and_build() {
  if ! command -v clang++ >/dev/null; then
    echo "fuzz.sh: clang++ not found (hint: scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
    exit 1
  fi
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTPRO_FUZZ=ON \
      -DTPRO_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
  fi
  cmake --build "$BUILD" -j "$JOBS" --target fuzzers
}

if [ "${1:-}" = "--seeds" ]; then
  configure_and_build
  rm -rf fuzz/corpus fuzz/dict
  "$BUILD/fuzz/fuzz_make_seeds" "$PWD"
  exit 0
fi

SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${TARGETS_ALL[@]}")
for t in "${TARGETS[@]}"; do
  [ -n "${MAX_LEN[$t]:-}" ] || { echo "fuzz.sh: unknown target '$t' (known: ${TARGETS_ALL[*]})" >&2; exit 2; }
done

configure_and_build
mkdir -p "$LOG_DIR" "$BUILD/artifacts"
export OMP_NUM_THREADS=1  # one core: the harnesses run one after another
export UBSAN_OPTIONS=print_stacktrace=1
failed=()
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus/$t"
  mkdir -p "$work"
  extra=()
  [ -f "fuzz/dict/$t.dict" ] && extra+=(-dict="fuzz/dict/$t.dict")
  [ -n "${FUZZ_SEED:-}" ] && extra+=(-seed="$FUZZ_SEED")
  log="$LOG_DIR/$t.log"
  echo "fuzz.sh: $t for ${SECONDS_EACH}s (log: $log)"
  if "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
       -max_len="${MAX_LEN[$t]}" -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-" \
       "${extra[@]}" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$log" | tail -1 | sed "s/^/  $t: /"
  else
    echo "fuzz.sh: $t FAILED; from $log:" >&2
    grep -E -A3 'ERROR:|runtime error|terminate called|what\(\)|SUMMARY|Test unit written' "$log" | cut -c1-400 >&2 || tail -20 "$log" >&2
    grep -E '^    #[0-9]+ .* in tpro::' "$log" | head -8 | cut -c1-300 >&2 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (reproducers: $BUILD/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#TARGETS[@]} harnesses ran ${SECONDS_EACH}s each without findings"
