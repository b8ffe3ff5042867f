#!/usr/bin/env bash
# Runs on the GPU machine: Nsight Compute's view of why chosen kernels of one NSA forward + backward
# (nsa_bench_nsa --profile) wait: throughput against the hardware peaks, issue activity, occupancy and the
# warp stall reasons (percent of active warp cycles), one block per kernel, for latency-bound kernels.
#   bash launch/device_nsa_stalls.sh [T=65536] [KERNEL_REGEX ...]
# e.g. bash launch/device_nsa_stalls.sh 65536 select_warp_kernel slc_query_kernel cmp_forward_wgmma
# NSA_STALLS_OPCODES=1: also the executed instructions per SASS opcode. Full reports in $OUT/stalls-N.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
source launch/device_build.sh
seq=${1:-65536}
shift || true
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(select_warp_kernel slc_query_kernel cmp_forward_wgmma_kernel)
device_build build-stalls.log nsa_bench_nsa
n=0
for k in "${kernels[@]}"; do
  n=$((n + 1))
  echo "== $k"
  timeout "${NSA_STEP_TIMEOUT:-300}" ncu --clock-control none -k "regex:$k" --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats \
    --metrics "regex:smsp__warp_issue_stalled_.*_per_warp_active\.pct${NSA_STALLS_OPCODES:+|sass__inst_executed_per_opcode}" \
    ${NSA_STALLS_OPCODES:+--print-metric-instances values} \
    "$BUILD/tests/bench/nsa_bench_nsa" --profile "$seq" >"$OUT/stalls-$n.txt" 2>&1
  # The headline numbers and the stall reasons above 2%.
  grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Issue Slots Busy|Achieved Occupancy|Theoretical Occupancy|Registers Per|Warp Cycles Per Issued|No Eligible|Active Warps Per Scheduler|Eligible Warps" "$OUT/stalls-$n.txt" | sed 's/  */ /g' | head -20
  grep -E "warp_issue_stalled_.*pct" "$OUT/stalls-$n.txt" | awk '{v=$NF; gsub(",","",v); if (v+0 >= 2) print}' | sed 's/  */ /g' | sort -t' ' -k4 -rn | head -12
  [ -z "${NSA_STALLS_OPCODES:-}" ] || grep -E "sass__inst_executed_per_opcode|Executed Instructions" "$OUT/stalls-$n.txt" | sed 's/  */ /g' | head -60
done
