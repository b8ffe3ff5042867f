#!/usr/bin/env bash
# Runs on the GPU machine (where torch and transformers are installed): checks that transformers loads
# nsa-ckpt's safetensors exports and computes the same logits as our model.
#
#   bash launch/device_tools_check.sh
#
# Builds the CPU-only tools (nsa-data, nsa-train, nsa-ckpt; no CUDA needed), trains three small models for
# 30 steps on synthetic data on the CPU, exports each (f32), runs `nsa-ckpt logits` and
# tests/tools/hf_logits_check.py on the same 64 tokens, which compares with AutoModelForCausalLM in float32:
#   A: dense GQA, untied embeddings, rope_theta 500000, norm_eps 1e-6  -> LlamaForCausalLM
#   B: configs/tiny.yaml's model (GQA, tied embeddings)                  -> LlamaForCausalLM
#   C: MoE 4 experts top-2, GQA                                          -> MixtralForCausalLM
# Each must reach a relative error <= 1e-3. Logs go to $OUT (or ./out); exit status 0 when all pass.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BUILD=${NSA_TOOLS_BUILD_DIR:-build-tools-check}
JOBS=$(nproc)

echo "== dependencies"
bash launch/setup.sh || echo "setup.sh failed (see above)"
# NSA_TOOLS_DRY_RUN=1 (machines without torch): everything but transformers; the script compares our
# logits with themselves, which tests the plumbing only.
dry_run=${NSA_TOOLS_DRY_RUN:-}
if [[ -z $dry_run ]]; then
  python3 -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__)" ||
    { echo "torch / transformers not importable"; exit 1; }
fi

echo "== build (CPU only: $BUILD)"
generator=()
command -v ninja >/dev/null && [[ ! -f $BUILD/CMakeCache.txt ]] && generator=(-G Ninja)
t0=$(date +%s)
cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNSA_CUDA=OFF >"$OUT/tools_configure.log" 2>&1 ||
  { tail -30 "$OUT/tools_configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target nsa-data nsa-train nsa-ckpt >"$OUT/tools_build.log" 2>&1 ||
  { grep -E "error" -A5 "$OUT/tools_build.log" | head -60; exit 1; }
echo "built in $(($(date +%s) - t0)) s"
bin=$BUILD/bin

work=$(mktemp -d "${TMPDIR:-/tmp}/nsa_tools_check_XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin/nsa-data" synth --out "$work/data" --train-tokens 200000 --val-tokens 10000 --vocab 512 >"$work/synth.log" 2>&1 ||
  { cat "$work/synth.log"; exit 1; }
tokens=$(python3 -c "print(','.join(str((i * 37 + 11) % 512) for i in range(64)))")

# check NAME MODEL_YAML [EXTRA_YAML]: train 30 steps, export, compare.
status=0
check() {
  local name=$1 model=$2 extra=${3:-}
  cat >"$work/$name.yaml" <<EOF
seed: 11
model: {$model}
$extra
data: {train: '$work/data/train_*.bin', val: ''}
optimizer: {lr: 3.0e-3}
schedule: {warmup_steps: 5}
training: {max_steps: 30, micro_batch_size: 4, global_batch_size: 4, seq_len: 64, device: cpu, eval_interval: 0}
checkpoint: {dir: '$work/$name/ck', interval: 30, keep: 1}
logging: {dir: '$work/$name', interval: 10, progress: off}
EOF
  echo "== $name: $model $extra"
  "$bin/nsa-train" "$work/$name.yaml" >"$work/$name.train.log" 2>&1 || { tail -5 "$work/$name.train.log"; status=1; return; }
  grep -E "^done" "$work/$name.train.log"
  local ck="$work/$name/ck/step_00000030.h5"
  local reference=()
  [[ -n $dry_run ]] && reference=(--reference-npy "$work/$name/ours.npy")
  "$bin/nsa-ckpt" export-safetensors "$ck" --out "$work/$name/hf" --dtype f32 | tail -1
  "$bin/nsa-ckpt" logits "$ck" --tokens "$tokens" --out "$work/$name/ours.npy" | head -1
  python3 tests/tools/hf_logits_check.py --model "$work/$name/hf" --logits "$work/$name/ours.npy" --tokens "$tokens" \
    --tol 1e-3 "${reference[@]}" 2>&1 | grep -vE "Warning|warn\(" | tee "$OUT/hf_check_$name.txt" || status=1
}

check dense-untied "vocab_size: 512, d_model: 64, n_layers: 3, n_heads: 8, n_kv_heads: 2, ffn_hidden: 176, tie_embeddings: false, rope_theta: 500000.0, norm_eps: 1.0e-6"
check tiny-tied "vocab_size: 512, d_model: 128, n_layers: 4, n_heads: 4, n_kv_heads: 2, ffn_hidden: 384, tie_embeddings: true"
check moe-mixtral "vocab_size: 512, d_model: 64, n_layers: 2, n_heads: 8, n_kv_heads: 2, ffn_hidden: 128, tie_embeddings: false" \
  "moe: {n_experts: 4, top_k: 2, expert_hidden: 96}"

echo "== summary"
for f in "$OUT"/hf_check_*.txt; do echo "$(basename "$f" .txt): $(grep -E '^relative error' "$f") -> $(tail -1 "$f")"; done
exit $status
