#!/usr/bin/env bash
# Runs on the GPU machine: the time of every kernel of one NSA forward + backward (nsa_bench_nsa --profile)
# under Nsight Compute, one line per kernel (ms, name), for finding where a branch's time goes.
#   bash launch/device_nsa_profile.sh [T=65536]
# Builds nsa_bench_nsa in $NSA_BUILD_DIR (default build-device) if needed. Output also in $OUT/kernels.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
source launch/device_build.sh
seq=${1:-65536}
device_build build-profile.log nsa_bench_nsa
ncu --clock-control none --metrics gpu__time_duration.sum --csv "$BUILD/tests/bench/nsa_bench_nsa" --profile "$seq" \
  >"$OUT/ncu.csv" 2>"$OUT/ncu.err" || { tail -5 "$OUT/ncu.err"; exit 1; }
# Kernels of the profiled pass only (the setup before it is cheap), at least 0.05 ms each.
python3 - "$OUT/ncu.csv" <<'PY' | tee "$OUT/kernels.txt"
import csv, re, sys
rows = list(csv.reader(open(sys.argv[1])))
start = next(i for i, r in enumerate(rows) if r and r[0] == "ID")
head = rows[start]
name_at, value_at, unit_at = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
scale = {"ns": 1e-6, "us": 1e-3, "usecond": 1e-3, "nsecond": 1e-6, "ms": 1.0, "msecond": 1.0}
total = 0.0
for r in rows[start + 1:]:
    if len(r) <= value_at:
        continue
    ms = float(r[value_at].replace(",", "")) * scale.get(r[unit_at], 1e-6)
    total += ms
    if ms >= 0.05:
        print(f"{ms:9.3f} ms  {re.sub(r'[(].*', '', r[name_at])[:90]}")
print(f"{total:9.3f} ms  all kernels (setup included)")
PY
