#!/usr/bin/env bash
# Installs tpro's build and test dependencies from Debian 12 packages (run as root or with sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# libopenblas0-pthread: the BLAS Debian's torch (the benchmark's reference) should run on;
# without it libtorch takes the reference libblas3, ~40x slower, and bench/run.py refuses to run.
PKGS=(build-essential cmake ninja-build pkg-config python3 python3-torch python3-numpy libopenblas0-pthread
      libdnnl-dev nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev libcli11-dev
      libpcre2-dev libcairo2-dev libgtest-dev libomp-dev chromium
      clang libclang-rt-14-dev)  # the fuzz harnesses (scripts/fuzz.sh): clang++ and libFuzzer's runtime
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js (with npm) is needed by the tokenizer/template oracles and the browser tests; any
# install that provides both commands will do (Debian's nodejs + npm packages otherwise).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# playwright-core (browser tests) needs Node.js 20 or newer; Debian 12's own nodejs is 18.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-deps: Node.js $(node --version 2>/dev/null || echo missing) found; the browser tests need Node.js >= 20" \
       "(hint: install nodejs 20 from NodeSource or Debian backports, then rerun)" >&2
  exit 1
fi
