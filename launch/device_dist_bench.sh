#!/usr/bin/env bash
# Runs on a multi-GPU machine (device tool: nvidia-h200-x2, -x4 or -x8): trains one config at several
# DP × TP layouts with NCCL, same global batch and steps, against one GPU of the same machine. Prints
# tokens/s, tokens/s per GPU, scaling efficiency (tok/s / (GPUs × tok/s on 1 GPU)), peak memory per GPU
# and the largest relative loss difference to the 1-GPU run (bf16: expect ~1e-3, not bitwise).
#   bash launch/device_dist_bench.sh [CONFIG=configs/dense-125m.yaml] [STEPS=60] [LAYOUTS]
#   LAYOUTS: space-separated GPUS:TP[:zero1], default for 2 GPUs "1:1 2:1 2:1:zero1 2:2"; e.g. on 8 GPUs
#   "1:1 2:1 4:1 8:1 8:2 8:4 4:2".
# Every layout keeps the config's global batch (so the loss curves are comparable); it must be a multiple
# of micro_batch_size × DP: NSA_EXTRA="--set training.micro_batch_size=4" adds overrides to every run.
# Writes $OUT/<config>_<layout>/metrics.jsonl and .log. NSA_DIST_TESTS=1 also runs the GPU unit tests of
# the TP pieces.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BUILD=${NSA_BUILD_DIR:-build-device}
config=${1:-configs/dense-125m.yaml}
steps=${2:-60}
layouts=${3:-"1:1 2:1 2:1:zero1 2:2"}
export NCCL_NVLS_ENABLE=0  # NVLink SHARP stays off on these machines
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNSA_CUDA=ON \
  -DNSA_CUDA_ARCHS=90a-real >"$OUT/configure.log" 2>&1
targets=(nsa-train nsa-data)
[ -n "${NSA_DIST_TESTS:-}" ] && targets+=(test_nn)
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}" >"$OUT/build.log" 2>&1 ||
  { grep -E "error" -A5 "$OUT/build.log" | head -40; exit 1; }
if [ -n "${NSA_DIST_TESTS:-}" ]; then
  "$BUILD/tests/nn/test_nn" --gtest_filter='ShardIndex*:VocabParallel*:Sharding*' 2>&1 | grep -E "PASSED|FAILED|identical"
fi

data=data/gpu
[ -e $data/train_000.bin ] || "$BUILD/bin/nsa-data" synth --out $data --train-tokens 40000000 --val-tokens 400000 \
  --shard-tokens 10000000 | tail -1
name=$(basename "$config" .yaml)
common=(--set "data.train=$data/train_*.bin" --set "data.val=$data/val_*.bin" --set training.max_steps="$steps"
        --set logging.interval=5 --set logging.progress=off --set checkpoint.interval=0 --set training.eval_interval=0)
# shellcheck disable=SC2206
common+=(${NSA_EXTRA:-})
runs=()
for layout in $layouts; do
  IFS=: read -r gpus tp zero <<<"$layout"
  run="${name}_g${gpus}_tp${tp}${zero:+_$zero}"
  extra=(--set parallel.tensor_parallel_size="$tp")
  [ -n "$zero" ] && extra+=(--set parallel.zero1=true)
  echo "== $run ($gpus GPUs, TP $tp${zero:+, ZeRO-1})"
  if [ "$gpus" -eq 1 ]; then
    CUDA_VISIBLE_DEVICES=0 "$BUILD/bin/nsa-train" "$config" "${common[@]}" --set logging.dir="$OUT/$run" "${extra[@]}" \
      >"$OUT/$run.log" 2>&1
  else
    mpirun --allow-run-as-root --bind-to none -np "$gpus" -x NCCL_NVLS_ENABLE "$BUILD/bin/nsa-train" "$config" \
      "${common[@]}" --set logging.dir="$OUT/$run" "${extra[@]}" >"$OUT/$run.log" 2>&1
  fi
  rc=$?
  grep -E "^(layout|done)|rror" "$OUT/$run.log" | head -4
  [ $rc -eq 0 ] || echo "$run failed with status $rc"
  runs+=("$run:$gpus")
done

python3 - "$OUT" "${runs[@]}" <<'PY'
import json, os, re, sys
out, runs = sys.argv[1], [r.rsplit(":", 1) for r in sys.argv[2:]]
def load(name):
    path = os.path.join(out, name, "metrics.jsonl")
    return [json.loads(l) for l in open(path) if '"loss"' in l] if os.path.exists(path) else None
def peak(name):
    m = re.search(r"peak memory ([0-9.]+) MiB", open(os.path.join(out, name + ".log")).read())
    return float(m.group(1)) / 1024 if m else float("nan")
def tok_s(rows):  # mean over the logged intervals after the first two (warm-up, autotuning)
    v = [r["tokens_per_s"] for r in rows[2:]] or [r["tokens_per_s"] for r in rows]
    return sum(v) / len(v)
base = load(runs[0][0])
if not base: sys.exit("no 1-GPU metrics")
t1 = tok_s(base)
print(f"{'run':<28} {'GPUs':>4} {'tok/s':>10} {'tok/s/GPU':>10} {'scaling':>8} {'peak GiB':>9} {'max rel dloss':>14}")
for name, gpus in runs:
    rows, g = load(name), int(gpus)
    if not rows: print(f"{name:<28} {g:>4} (no result)"); continue
    t = tok_s(rows)
    diff = max(abs(a["loss"] - b["loss"]) / abs(b["loss"]) for a, b in zip(rows, base))
    print(f"{name:<28} {g:>4} {t:>10.0f} {t / g:>10.0f} {t / (g * t1):>8.1%} {peak(name):>9.2f} {diff:>14.2e}")
print("loss at each logged step:", " | ".join(name for name, _ in runs))
for i, r in enumerate(base):
    vals = []
    for name, _ in runs:
        rows = load(name) or []
        vals.append(f"{rows[i]['loss']:.4f}" if i < len(rows) else "-")
    print(f"  {r['step']:>4}: " + " ".join(vals))
PY
