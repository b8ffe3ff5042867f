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

# The CPU-only configuration (-DNSA_CUDA=OFF) is supported too: build and test it whenever the main build
# had CUDA, so that code needing a stub for CPU-only builds cannot go unnoticed. NSA_SKIP_CPU_ONLY=1 skips.
if [ -z "${NSA_SKIP_CPU_ONLY:-}" ] && grep -q "^NSA_WITH_CUDA:INTERNAL=ON" "$build/CMakeCache.txt"; then
  echo "== CPU-only build (${build}-cpu-only)"
  # shellcheck disable=SC2086
  cmake -S . -B "${build}-cpu-only" -DCMAKE_BUILD_TYPE=Release -DNSA_CUDA=OFF ${NSA_CMAKE_ARGS:-} >/dev/null
  cmake --build "${build}-cpu-only" -j "$jobs"
  ctest --test-dir "${build}-cpu-only" -j "$jobs" --output-on-failure
fi
