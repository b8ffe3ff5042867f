#!/usr/bin/env bash
# Runs on the GPU machine (through the device tool): configure and build for Hopper, run the whole test
# suite, then the core micro-benchmark. Logs go to $OUT (or ./out) and a summary is printed last.
#
#   bash launch/device_check.sh            # build + tests + benchmark
#   NSA_SKIP_BENCH=1 bash launch/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BUILD=${NSA_BUILD_DIR:-build-device}
JOBS=$(nproc)

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"

echo "== dependencies"
bash launch/setup.sh || echo "setup.sh failed (see above)"

echo "== configure + build ($BUILD, sm_90a)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
t0=$(date +%s)
cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNSA_CUDA=ON -DNSA_CUDA_ARCHS=90a-real -DNSA_NPM_TESTS=OFF \
  >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" >"$OUT/build.log" 2>&1 || { grep -E "error" -A5 "$OUT/build.log" | head -60; exit 1; }
echo "built in $(( $(date +%s) - t0 )) s"

echo "== tests"
ctest --test-dir "$BUILD" -j 8 --output-on-failure >"$OUT/ctest.log" 2>&1
ctest_rc=$?
# The per-op relative errors of the CUDA-vs-CPU comparisons and the gradient checks.
"$BUILD/tests/test_ops" --gtest_filter='*CudaVsCpu*:*GradCheck*' 2>&1 | grep -E '^\[(cuda-vs-cpu|gradcheck)\]' \
  >"$OUT/op_errors.txt"
grep -E "FAILED|Failed|\*\*\*" "$OUT/ctest.log" | head -40
passed=$(grep -cE "Test +#[0-9]+: .* Passed" "$OUT/ctest.log")
failed=$(grep -cE "\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout" "$OUT/ctest.log")
skipped=$(grep -cE "\*\*\*Skipped| Skipped " "$OUT/ctest.log")
gpu_skipped=$(grep -E "\*\*\*Skipped" "$OUT/ctest.log" | grep -c "Cuda")

bench_rc=0
if [ -z "${NSA_SKIP_BENCH:-}" ]; then
  echo "== benchmark"
  "$BUILD/tests/bench/nsa_bench_core" | tee "$OUT/bench.md"
  bench_rc=${PIPESTATUS[0]}
fi

echo "== summary"
echo "device: $(cat "$OUT/device.txt")"
echo "tests: $passed passed, $failed failed, $skipped skipped ($gpu_skipped of them GPU tests); ctest exit $ctest_rc"
awk '/^\[cuda-vs-cpu\]/ { for (i = 4; i <= NF; i++) if ($i ~ /=[0-9]/) { split($i, kv, "=");
       if (!($3 in worst) || kv[2] + 0 > worst[$3]) { worst[$3] = kv[2] + 0; at[$3] = $2 " " kv[1] } } }
     END { for (d in worst) printf "worst %s CUDA-vs-CPU relative error: %.2e (%s)\n", d, worst[d], at[d] }' \
  "$OUT/op_errors.txt"
[ "$ctest_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
