#!/usr/bin/env bash
# The README's first command: installs the dependencies, builds nsa-train and nsa-data, writes the embedded
# default data (data/tiny, deterministic) when it is absent, and trains a config (configs/tiny.yaml by
# default) on the GPU when one is present, otherwise on the CPU.
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

if ! ls data/tiny/train_*.bin >/dev/null 2>&1; then
  echo "== generating the default data (data/tiny)"
  "$build/bin/nsa-data" synth --out data/tiny
fi
echo "== training $config"
exec "$build/bin/nsa-train" "$config" "$@"
