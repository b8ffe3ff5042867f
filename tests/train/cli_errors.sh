#!/usr/bin/env bash
# The command line of nsa-train on bad input: each case must exit with status 1, print nothing on stdout
# and exactly one line on stderr, "nsa-train: error: ...", naming the file / key / option at fault.
# Also: --help (status 0, usage on stdout), --print-config (YAML that loads again and prints the same),
# and a short real run whose checkpoint a different model then refuses.
#
# usage: cli_errors.sh NSA_TRAIN NSA_DATA   (CTest passes the built executables)
source "$(dirname "${BASH_SOURCE[0]}")/../cli_lib.sh"  # also sets -u
cli_args 2 2 "NSA_TRAIN NSA_DATA" "$@"
nsa_train=$1
nsa_data=$2
cli_workdir nsa_cli
cli_program=$nsa_train
cli_error_prefix="nsa-train: error: "

# ---- fixtures: a small synthetic corpus, a valid config, broken files ----
cli_synth "$nsa_data" 512

good="$work/good.yaml"
cat >"$good" <<EOF
seed: 5
model: {vocab_size: 512, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_hidden: 64}
data: {train: '$work/data/train_*.bin', val: '$work/data/val_*.bin'}
training: {max_steps: 2, micro_batch_size: 2, global_batch_size: 2, seq_len: 16, device: cpu,
           eval_interval: 0}
checkpoint: {dir: '$work/run/ck', interval: 2, keep: 2}
logging: {dir: '$work/run', interval: 1, progress: off}
EOF

printf 'model:\n  d_model: [1, 2\n' >"$work/syntax.yaml"
printf 'model:\n  d_modle: 64\n' >"$work/typo.yaml"
printf 'model:\n  d_model: sixty-four\n' >"$work/type.yaml"
printf 'model:\n  n_heads: 4\n  n_kv_heads: 3\n' >"$work/heads.yaml"

mkdir -p "$work/bad"
head -c 5000 "$work/data/train_000.bin" >"$work/bad/truncated_000.bin"  # header says 10000 tokens
{
  printf 'NOPE'
  tail -c +5 "$work/data/train_000.bin"
} >"$work/bad/magic_000.bin"
mkdir -p "$work/corrupt_ck"
head -c 4096 /dev/urandom >"$work/corrupt_ck/step_00000004.h5"

# ---- error cases ----
expect_error "no CONFIG" "missing CONFIG" --
expect_error "unknown option" "unknown option '--bogus'" -- "$good" --bogus
expect_error "nonexistent config" "$work/missing.yaml" "not found" -- "$work/missing.yaml"
expect_error "YAML syntax error" "$work/syntax.yaml" "line" -- "$work/syntax.yaml"
expect_error "unknown key" "$work/typo.yaml" "model.d_modle" "did you mean 'model.d_model'" -- \
  "$work/typo.yaml"
expect_error "wrong type" "$work/type.yaml" "model.d_model" "integer" "sixty-four" -- "$work/type.yaml"
expect_error "heads not divisible" "$work/heads.yaml" "model.n_heads" "model.n_kv_heads" -- "$work/heads.yaml"
expect_error "--set without =" "--set" "training.max_steps" "key.path=value" -- \
  "$good" --set training.max_steps
expect_error "--set with nothing after it" "--set" -- "$good" --set
expect_error "--set unknown key" "training.max_stepz" "did you mean 'training.max_steps'" -- \
  "$good" --set training.max_stepz=3
expect_error "--set wrong type" "training.max_steps" "integer" -- "$good" --set training.max_steps=many
expect_error "two CONFIGs" "unexpected argument" -- "$good" "$good"
expect_error "data glob matching nothing" "data.train" "$work/data/nothing_*.bin" -- \
  "$good" --set "data.train=$work/data/nothing_*.bin"
expect_error "truncated shard" "data.train" "$work/bad/truncated_000.bin" "truncated" -- \
  "$good" --set "data.train=$work/bad/truncated_*.bin"
expect_error "wrong magic" "data.train" "$work/bad/magic_000.bin" "magic" -- \
  "$good" --set "data.train=$work/bad/magic_*.bin"
expect_error "bad val shard" "data.val" "$work/bad/truncated_000.bin" -- \
  "$good" --set "data.val=$work/bad/truncated_*.bin" --set training.eval_interval=1
expect_error "corrupt checkpoint" "$work/corrupt_ck/step_00000004.h5" -- \
  "$good" --set "checkpoint.dir=$work/corrupt_ck" --resume

# ---- a real run, then its checkpoint refused by a different model ----
if "$nsa_train" "$good" >"$work/stdout" 2>"$work/stderr"; then
  grep -q "^done: steps 0..2" "$work/stdout" ||
    fail "short run" "no 'done: steps 0..2' line: $(cat "$work/stdout")"
  [[ -s $work/stderr ]] && fail "short run" "unexpected stderr: $(cat "$work/stderr")"
  [[ -f $work/run/ck/step_00000002.h5 ]] || fail "short run" "no checkpoint step_00000002.h5"
else
  fail "short run" "exit status $?: $(cat "$work/stderr")"
fi
expect_error "checkpoint of another model" "$work/run/ck/step_00000002.h5" "/params/embed.weight" \
  "expected shape" -- \
  "$good" --resume --set model.d_model=48 --set training.max_steps=4

# ---- --help ----
"$nsa_train" --help >"$work/stdout" 2>"$work/stderr"
status=$?
echo "[--help] status $status"
[[ $status -eq 0 ]] || fail "--help" "exit status $status, expected 0"
grep -q "^usage: nsa-train CONFIG" "$work/stdout" || fail "--help" "no usage line on stdout"
[[ -s $work/stderr ]] && fail "--help" "unexpected stderr: $(cat "$work/stderr")"

# ---- --print-config: YAML that loads again and prints the same ----
"$nsa_train" "$good" --set training.max_steps=77 --print-config >"$work/printed.yaml" 2>"$work/stderr"
status=$?
echo "[--print-config] status $status, $(wc -l <"$work/printed.yaml") lines"
[[ $status -eq 0 ]] || fail "--print-config" "exit status $status: $(cat "$work/stderr")"
[[ -s $work/stderr ]] && fail "--print-config" "unexpected stderr: $(cat "$work/stderr")"
grep -q "max_steps: 77" "$work/printed.yaml" || fail "--print-config" "the --set value is not in the output"
grep -q "n_kv_heads: 2" "$work/printed.yaml" || fail "--print-config" "the file's value is not in the output"
"$nsa_train" "$work/printed.yaml" --print-config >"$work/reprinted.yaml" 2>"$work/stderr"
status=$?
[[ $status -eq 0 ]] || fail "--print-config" "the printed config does not load again: $(cat "$work/stderr")"
cmp -s "$work/printed.yaml" "$work/reprinted.yaml" ||
  fail "--print-config" "loading the printed config prints another:" \
    "$(diff "$work/printed.yaml" "$work/reprinted.yaml" | head -5)"

cli_finish "all cases passed"
