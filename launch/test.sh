#!/usr/bin/env bash
# The README's test command: installs the dependencies, configures, builds (with the CUDA backend when nvcc
# is found) and runs every test. GPU tests skip themselves on machines without a GPU. Exits non-zero on any
# failure.
#   NSA_BUILD_DIR=build  NSA_JOBS=<nproc>  extra cmake arguments: NSA_CMAKE_ARGS="-DNSA_CUDA=OFF"
set -euo pipefail
cd "$(dirname "$0")/.."
build=${NSA_BUILD_DIR:-build}
jobs=${NSA_JOBS:-$(nproc)}

bash launch/setup.sh
echo "== configure ($build)"
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${NSA_CMAKE_ARGS:-}
echo "== build ($jobs jobs)"
cmake --build "$build" -j "$jobs"
echo "== test"
ctest --test-dir "$build" -j "$jobs" --output-on-failure
