#!/usr/bin/env bash
# nsa-ckpt end to end on a checkpoint that nsa-train writes: inspect, export → import (and nsa-train
# continues from the import exactly where the original would: same next loss), reshard 1 → 2 → 1 → 2 and
# → 4 with identical tensors (compared through deterministic f32 exports), strip-optimizer, logits; then
# bad input: each case must exit 1 with nothing on stdout and one stderr line "nsa-ckpt: error: ...".
#
# usage: ckpt_cli.sh NSA_CKPT NSA_TRAIN NSA_DATA   (CTest passes the built executables)
source "$(dirname "${BASH_SOURCE[0]}")/../cli_lib.sh"  # also sets -u
cli_args 3 3 "NSA_CKPT NSA_TRAIN NSA_DATA" "$@"
ckpt=$1
train=$2
data=$3
cli_workdir nsa_ckpt_cli
cli_program=$ckpt
cli_error_prefix="nsa-ckpt: error: "

# run NAME ARGS...: nsa-ckpt ARGS must succeed; its stdout is left in $work/out.
run() {
  local name=$1
  shift
  if ! "$ckpt" "$@" >"$work/out" 2>"$work/err"; then
    fail "$name" "exit status $?: $(cat "$work/err")"
  fi
}

# expect_out NAME FRAGMENT...: every FRAGMENT is in the last run's stdout.
expect_out() {
  local name=$1 fragment
  shift
  for fragment in "$@"; do
    grep -qF -- "$fragment" "$work/out" || fail "$name" "'$fragment' not in the output: $(head -c 600 "$work/out")"
  done
}

# same_files NAME A B: identical bytes.
same_files() {
  cmp -s "$2" "$3" || fail "$1" "$2 and $3 differ"
}

# ---- fixture: 4 steps of a small untied GQA model (vocabulary 509: uneven TP splits) ----
cli_synth "$data" 509
cat >"$work/model.yaml" <<EOF
seed: 5
model: {vocab_size: 509, d_model: 32, n_layers: 2, n_heads: 8, n_kv_heads: 4, ffn_hidden: 48, tie_embeddings: false}
data: {train: '$work/data/train_*.bin', val: ''}
training: {max_steps: 4, micro_batch_size: 2, global_batch_size: 2, seq_len: 16, device: cpu, eval_interval: 0}
checkpoint: {dir: '$work/run/ck', interval: 2, keep: 2}
logging: {dir: '$work/run', interval: 1, progress: off}
EOF
if ! "$train" "$work/model.yaml" >"$work/train.log" 2>&1; then
  echo "FAIL: nsa-train: $(cat "$work/train.log")"
  exit 1
fi
ck="$work/run/ck/step_00000004.h5"

# ---- inspect ----
run inspect inspect "$ck"
expect_out inspect "nsa-train checkpoint (format_version 1)" "step 4" "params: 21 tensors" "embed.weight" \
  "[509, 32]" "blocks.1" "w_down.weight" "lm_head.weight" "optimizer: 42 tensors" "exp_avg_sq" \
  "optimizer.step 4" "untied embeddings"
run inspect-config inspect --config --brief "$ck"
expect_out inspect-config "vocab_size: 509" "n_kv_heads: 4"
grep -qF "embed.weight" "$work/out" && fail inspect-config "--brief printed the tensor tree"

# ---- export -> import -> training continues ----
run export export-safetensors "$ck" --out "$work/exp"
expect_out export "LlamaForCausalLM (loadable by transformers)"
grep -qF '"architectures": [' "$work/exp/config.json" || fail export "config.json lacks architectures"
grep -qF '"num_key_value_heads": 4' "$work/exp/config.json" || fail export "config.json lacks num_key_value_heads"
run inspect-export inspect "$work/exp"
expect_out inspect-export "safetensors" "embed_tokens.weight" "layers.1" "self_attn" "q_proj.weight" \
  "metadata format: pt" "metadata nsa_train.step: 4"
run import import-safetensors "$work/exp" --out "$work/imp/ck/step_00000004.h5"
expect_out import "step 4, 21 parameters" "optimizer restarts"

# The original resumed and the import resumed see the same weights and batch: the same step-5 loss.
mkdir -p "$work/orig/ck"
cp "$ck" "$work/orig/ck/"
for variant in orig imp; do
  if ! "$train" "$work/model.yaml" --resume --set training.max_steps=6 --set checkpoint.dir="$work/$variant/ck" \
    --set logging.dir="$work/$variant" >"$work/$variant.log" 2>&1; then
    fail "resume-$variant" "$(tail -3 "$work/$variant.log")"
  fi
done
# metrics.jsonl holds the loss and gradient norm at full precision; both depend only on weights and batch.
orig_loss=$(grep -o '"step": 5, "loss": [0-9.e-]*, "lr": [0-9.e-]*, "grad_norm": [0-9.e-]*' "$work/orig/metrics.jsonl")
imp_loss=$(grep -o '"step": 5, "loss": [0-9.e-]*, "lr": [0-9.e-]*, "grad_norm": [0-9.e-]*' "$work/imp/metrics.jsonl")
echo "resumed original: $orig_loss"
echo "resumed import:   $imp_loss"
[[ -n $orig_loss && $orig_loss == "$imp_loss" ]] || fail resume "step-5 metrics differ: '$orig_loss' vs '$imp_loss'"
grep -q "resumed from $work/imp/ck/step_00000004.h5 at step 4" "$work/imp.log" || fail resume "no resume line"

# ---- reshard: 1 -> 2 -> 1 -> 2 and 2 -> 4, tensors compared through f32 exports ----
run reshard-2 reshard "$ck" --tp 2 --out "$work/tp/a"
expect_out reshard-2 "a.tp0-of-2.h5" "a.tp1-of-2.h5"
run inspect-piece inspect "$work/tp/a.tp1-of-2.h5"
expect_out inspect-piece "format_version 2" "rank 1 of 2" "[255, 32] of [509, 32] (dim 0 from 254)" \
  "of [32, 32] (dim 1 from 16)"
run reshard-1 reshard "$work/tp/a" --tp 1 --out "$work/tp/merged.h5"
run reshard-2b reshard "$work/tp/merged.h5" --tp 2 --out "$work/tp/b.h5"
run reshard-4 reshard "$work/tp/b.tp0-of-2.h5" --tp 4 --out "$work/tp/c"
expect_out reshard-4 "c.tp3-of-4.h5"
run inspect-set inspect --brief "$work/tp/c"
expect_out inspect-set "tensor-parallel set of 4 pieces (shown merged)" "params: 21 tensors, 48,096 values"
for source in "$ck" "$work/tp/a" "$work/tp/merged.h5" "$work/tp/b" "$work/tp/c.tp2-of-4.h5"; do
  name=$(basename "$source")
  run "export-$name" export-safetensors "$source" --out "$work/cmp/$name"
done
for name in a merged.h5 b c.tp2-of-4.h5; do
  same_files "reshard-$name" "$work/cmp/step_00000004.h5/model.safetensors" "$work/cmp/$name/model.safetensors"
done
# Each piece of the 2-set written from the merged file equals the piece written from the original.
run logits-a logits "$work/tp/a" --tokens 1,2,3,500 --out "$work/la.npy"
run logits-b logits "$work/tp/b" --tokens 1,2,3,500 --out "$work/lb.npy"
run logits-o logits "$ck" --tokens 1,2,3,500 --out "$work/lo.npy"
expect_out logits-o "4 tokens -> [4, 509] f32"
same_files logits "$work/la.npy" "$work/lo.npy"
same_files logits "$work/lb.npy" "$work/lo.npy"

# ---- strip-optimizer ----
run strip strip-optimizer "$work/tp/a" --out "$work/w.h5"
expect_out strip "42 optimizer tensors dropped" "bf16 parameters"
run inspect-strip inspect --brief "$work/w.h5"
expect_out inspect-strip "optimizer: none (weights only)" "stored bf16" "step 4"
run strip-export export-safetensors "$work/w.h5" --out "$work/wexp" --dtype bf16
[[ $(stat -c %s "$work/w.h5") -lt $(($(stat -c %s "$ck") / 4)) ]] || fail strip "the stripped file is not < 1/4 of the original"

# ---- --help ----
for command in inspect export-safetensors import-safetensors reshard strip-optimizer logits; do
  "$ckpt" "$command" --help >"$work/out" 2>&1 || fail "help-$command" "exit status $?"
  grep -q "^usage: nsa-ckpt $command" "$work/out" || fail "help-$command" "no usage line"
done

# ---- bad input ----
printf 'not a checkpoint\n' >"$work/text.h5"
head -c 3000 "$ck" >"$work/truncated.h5"
printf 'garbage!' >"$work/garbage.safetensors"
head -c -100 "$work/exp/model.safetensors" >"$work/truncated.safetensors"
printf 'seed: 5\nmodel: {vocab_size: 509, d_model: 48, n_layers: 2, n_heads: 8, n_kv_heads: 4, tie_embeddings: false}\n' >"$work/other.yaml"
mkdir -p "$work/broken"
cp "$work/tp/a.tp0-of-2.h5" "$work/broken/s.tp0-of-2.h5"

expect_error no-command "missing command" --
expect_error unknown-command "unknown command 'convert'" -- convert "$ck"
expect_error unknown-option "unknown option '--outt'" "did you mean '--out'" "nsa-ckpt reshard --help" -- \
  reshard "$ck" --tp 2 --outt x
expect_error missing-out "--out is required" -- export-safetensors "$ck"
expect_error two-inputs "unexpected argument" -- strip-optimizer "$ck" "$ck" --out "$work/x.h5"
expect_error bad-dtype "--dtype: expected f32 or bf16, got 'f16'" -- export-safetensors "$ck" --out "$work/x" --dtype f16
expect_error tp-zero "--tp: expected 1..4096, got 0" -- reshard "$ck" --tp 0 --out "$work/x"
expect_error tp-three "reshard --tp 3" "does not divide model.n_kv_heads = 4" -- reshard "$ck" --tp 3 --out "$work/x"
expect_error missing-file "nope.h5: no such file" -- inspect "$work/nope.h5"
expect_error text-file "text.h5: not an HDF5 file" -- inspect "$work/text.h5"
expect_error truncated-h5 "truncated.h5" "damaged or truncated" -- export-safetensors "$work/truncated.h5" --out "$work/x"
expect_error garbage-st "garbage.safetensors: not a safetensors file" -- import-safetensors "$work/garbage.safetensors" \
  --out "$work/x.h5"
expect_error truncated-st "truncated.safetensors" "truncated?" -- inspect "$work/truncated.safetensors"
expect_error wrong-config "model.embed_tokens.weight: shape [509, 32], the config's model needs [509, 48]" -- \
  import-safetensors "$work/exp" --config "$work/other.yaml" --out "$work/x.h5"
expect_error missing-piece "s.tp1-of-2.h5: no such file" "rank 1 of the 2-piece set" -- \
  reshard "$work/broken/s.tp0-of-2.h5" --tp 1 --out "$work/x.h5"
expect_error bad-token "token 509 outside the vocabulary [0, 509)" -- logits "$ck" --tokens 1,509
expect_error bad-tokens "--tokens: expected comma-separated integers, got 'x'" -- logits "$ck" --tokens 1,x
expect_error no-export "a directory without model.safetensors" -- inspect "$work/broken"

cli_finish "all nsa-ckpt CLI checks passed"
