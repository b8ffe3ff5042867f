#!/usr/bin/env bash
# Runs on the GPU machine (through the device tool): trains a config on the GPU and, side by side in the
# same run, times the same model in PyTorch (eager and torch.compile) as the throughput reference.
#   bash launch/device_train.sh [CONFIG=configs/dense-125m.yaml] [STEPS=300]
# Writes $OUT/train.log, $OUT/metrics.jsonl, $OUT/torch.txt. Reuses build-device when it exists.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BUILD=${NSA_BUILD_DIR:-build-device}
config=${1:-configs/dense-125m.yaml}
steps=${2:-300}

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNSA_CUDA=ON \
  -DNSA_CUDA_ARCHS=90a-real >"$OUT/configure.log" 2>&1
cmake --build "$BUILD" -j "$(nproc)" --target nsa-train nsa-data >"$OUT/build-train.log" 2>&1 ||
  { grep -E "error" -A5 "$OUT/build-train.log" | head -40; exit 1; }

# More data than the CPU default so that a few hundred GPU steps do not cycle through it many times.
data=data/gpu
[ -e $data/train_000.bin ] || "$BUILD/bin/nsa-data" synth --out $data --train-tokens 40000000 --val-tokens 400000 \
  --shard-tokens 10000000 | tail -3
name=$(basename "$config" .yaml)
echo "== nsa-train $config ($steps steps)"
"$BUILD/bin/nsa-train" "$config" --set "data.train=$data/train_*.bin" --set "data.val=$data/val_*.bin" \
  --set training.max_steps="$steps" --set logging.dir="$OUT/$name" --set logging.progress=off \
  --set checkpoint.interval=0 2>&1 | tee "$OUT/train.log" | grep -E "^(nsa-train|model|data|eval|done|step 1/|step [0-9]*[05]0/)|rror" | tail -30
rc=${PIPESTATUS[0]}
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader

if [ -z "${NSA_SKIP_TORCH:-}" ] && python3 -c "import torch" 2>/dev/null; then
  echo "== PyTorch reference (same shape)"
  read -r d L H KV F V T MB GB < <(python3 - "$config" <<'PY'
import sys, re
text = open(sys.argv[1]).read()
def key(name, default):
    m = re.search(r"^\s*" + name + r":\s*([0-9]+)", text, re.M)
    return int(m.group(1)) if m else default
print(key("d_model", 768), key("n_layers", 12), key("n_heads", 12), key("n_kv_heads", 4), key("ffn_hidden", 2304),
      key("vocab_size", 50304), key("seq_len", 1024), key("micro_batch_size", 16), key("global_batch_size", 32))
PY
)
  python3 tests/bench/torch_lm_reference.py --d-model "$d" --layers "$L" --heads "$H" --kv-heads "$KV" --ffn "$F" \
    --vocab "$V" --seq "$T" --micro "$MB" --accum $((GB / MB)) --steps 20 2>&1 | grep -E "^torch|Error" | tee "$OUT/torch.txt"
fi
exit "$rc"
