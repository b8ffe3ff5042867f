#!/usr/bin/env bash
# Runs on the GPU machine (through the device tool): the NSA and attention kernel tests, then the NSA
# benchmark (tests/bench/bench_nsa.cpp) and our dense attention benchmark next to PyTorch SDPA (flash and
# cuDNN backends, tests/bench/sdpa_reference.py) at the same shapes, in one run.
#   bash launch/device_nsa_bench.sh [SEQS=8192,16384,32768,65536]
# NSA_SKIP_TESTS=1: benchmarks only; NSA_TESTS="test_nsa_cuda ...": those tests only; NSA_SKIP_REFERENCE=1: no
# PyTorch SDPA and no dense-attention benchmark (NSA only, e.g. while tuning a kernel); NSA_SKIP_DENSE=1: SDPA
# but not our dense flash kernel. NSA_STEP_TIMEOUT=seconds (default 900): limit on each test and benchmark
# binary, so that a hung kernel costs minutes, not the whole call.
# Outputs in $OUT: nsa_tests.txt, bench_nsa.txt, bench_attention.txt, sdpa.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
source launch/device_build.sh
seqs=${1:-8192,16384,32768,65536}
limit=(timeout "${NSA_STEP_TIMEOUT:-900}")

t0=$(date +%s)
device_build build-nsa.log test_nsa test_nsa_cuda test_attention test_flash_attention test_nn \
  nsa_bench_nsa nsa_bench_attention nsa_bench_l2
echo "built in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader

rc=0
[ -n "${NSA_SKIP_TESTS:-}" ] || echo "== NSA and attention tests (CUDA vs CPU)"
[ -n "${NSA_SKIP_TESTS:-}" ] || for t in ${NSA_TESTS:-test_nsa_cuda test_nsa test_flash_attention test_attention}; do
  bin=$(find "$BUILD/tests" -name "$t" -type f -perm -u+x | head -1)
  [ -n "$bin" ] || { echo "device_nsa_bench.sh: no test binary $t under $BUILD/tests" | tee -a "$OUT/nsa_tests.txt"; rc=1; continue; }
  "${limit[@]}" "$bin" 2>&1 | tee -a "$OUT/nsa_tests.txt" | grep -E "^\[  (PASSED|FAILED) |FAILED  \]" || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
done
[ -n "${NSA_SKIP_TESTS:-}" ] || grep -E "rel_err|rel err|max_err|determin" "$OUT/nsa_tests.txt" | tail -60 >"$OUT/nsa_errors.txt"

if [ -z "${NSA_SKIP_REFERENCE:-}" ]; then
  echo "== PyTorch SDPA (same shapes, same run)"
  python3 tests/bench/sdpa_reference.py --seqs "$seqs" --backend flash 2>&1 | tee "$OUT/sdpa.txt"
  python3 tests/bench/sdpa_reference.py --seqs "$seqs" --backend cudnn 2>&1 | tee -a "$OUT/sdpa.txt"
  if [ -z "${NSA_SKIP_DENSE:-}" ]; then
    echo "== nsa-train dense attention (flash kernel)"
    "${limit[@]}" "$BUILD/tests/bench/nsa_bench_attention" ${seqs//,/ } 2>&1 | tee "$OUT/bench_attention.txt"
  fi
fi
echo "== L2 read ceiling (tests/bench/bench_l2.cu)"
"${limit[@]}" "$BUILD/tests/bench/nsa_bench_l2" 2>&1 | tee "$OUT/bench_l2.txt"
echo "== nsa-train NSA"
"${limit[@]}" "$BUILD/tests/bench/nsa_bench_nsa" ${seqs//,/ } 2>&1 | tee "$OUT/bench_nsa.txt"
exit "$rc"
