#!/usr/bin/env bash
# Runs on the GPU machine (through the device tool): an A/B check of one change. Builds the tree as it is
# (B) and a copy with PATCH reverse-applied (A), then runs each test binary REPEAT times in both, printing
# the gtest verdicts and any exception, to tell which change a failure (or a flaky one) comes from.
#   bash launch/device_ab.sh PATCH "TEST[:GTEST_FILTER] ..." [REPEAT=3]
# e.g. bash launch/device_ab.sh launch/change.patch "test_flash_attention test_nsa_cuda:*Compressed*" 3
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
patch_file=${1:?usage: device_ab.sh PATCH "TESTS" [REPEAT]}
tests=${2:?usage: device_ab.sh PATCH "TESTS" [REPEAT]}
repeat=${3:-3}
B=${NSA_BUILD_DIR:-build-device}
A=/tmp/nsa-ab-A
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
configure() { [ -f "$2/CMakeCache.txt" ] || cmake -S "$1" -B "$2" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DNSA_CUDA=ON -DNSA_CUDA_ARCHS=90a-real >"$OUT/configure-$3.log" 2>&1; }
rm -rf "$A" && mkdir -p "$A"
tar --exclude="./$B" --exclude=./out -cf - . | tar -xf - -C "$A"
(cd "$A" && patch -R -p1 <"$(realpath "$patch_file")" >"$OUT/patch-A.log") || { echo "patch does not reverse-apply"; exit 1; }
configure . "$B" B && configure "$A" "$A/build" A || { echo "configure failed"; exit 1; }
targets=()
for t in $tests; do targets+=("${t%%:*}"); done
half=$(( $(nproc) / 2 ))
cmake --build "$B" -j "$half" --target "${targets[@]}" >"$OUT/build-B.log" 2>&1 &
cmake --build "$A/build" -j "$half" --target "${targets[@]}" >"$OUT/build-A.log" 2>&1
wait
for v in A B; do
  dir=$([ "$v" = A ] && echo "$A/build" || echo "$B")
  for t in $tests; do
    name=${t%%:*}
    filter=$([ "$t" = "$name" ] && echo '*' || echo "${t#*:}")
    bin=$(find "$dir/tests" -name "$name" -type f -perm -u+x | head -1)
    [ -n "$bin" ] || { echo "== $v: no binary $name (see $OUT/build-$v.log)"; continue; }
    for r in $(seq "$repeat"); do
      echo "== $v $name [$filter] run $r"
      timeout "${NSA_STEP_TIMEOUT:-300}" "$bin" --gtest_filter="$filter" >"$OUT/$v-$name-$r.txt" 2>&1
      echo "rc=$?"
      grep -E "^\[  (PASSED|FAILED) |tests? ran|exception" "$OUT/$v-$name-$r.txt" | head -4 | cut -c1-300
    done
  done
done
