#!/usr/bin/env bash
# Runs on the GPU machine (through the device tool): builds one test and runs it under compute-sanitizer,
# to name the kernel and the access behind an "unspecified launch failure".
#   bash launch/device_sanitize.sh TEST [GTEST_FILTER] [TOOL=memcheck]
# e.g. bash launch/device_sanitize.sh test_flash_attention 'FlashAttention.BackwardIsBitIdenticalAcrossRuns'
# Output in $OUT/sanitize.txt (the first 200 lines also on stdout).
set -uo pipefail
cd "$(dirname "$0")/.."
source launch/device_build.sh
test=${1:?usage: device_sanitize.sh TEST [GTEST_FILTER] [TOOL]}
filter=${2:-*}
tool=${3:-memcheck}
device_build build.log "$test"
bin=$(find "$BUILD/tests" -name "$test" -type f -perm -u+x | head -1)
[ -n "$bin" ] || { echo "device_sanitize.sh: no test binary $test under $BUILD/tests"; exit 1; }
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout "${NSA_STEP_TIMEOUT:-400}" "$sanitizer" --tool "$tool" --print-limit 20 "$bin" --gtest_filter="$filter" \
  >"$OUT/sanitize.txt" 2>&1
rc=$?
head -200 "$OUT/sanitize.txt" | cut -c1-400
exit "$rc"
