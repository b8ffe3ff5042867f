#!/usr/bin/env bash
# End-to-end distributed training on CPU with the MPI backend (issue 5 and the CPU half of issue 8): each
# layout trains the same small model on the same global batches and must log the same losses as one process
# (relative difference <= 1e-5 in f32), and checkpoints move between TP sizes.
#
# usage: mpi_train.sh NSA_TRAIN NSA_DATA MPIEXEC [quick|full]
#   quick (CI): DP=2, TP=2, DP=2×TP=2, ZeRO-1, MoE and NSA under TP=2, TP=2 checkpoint resumed at TP=1 and 4.
#   full: also the 8-process layouts DP=8, DP=4×TP=2, DP=2×TP=4 (docs/distributed.md).
source "$(dirname "${BASH_SOURCE[0]}")/../cli_lib.sh"  # also sets -u
cli_args 3 4 "NSA_TRAIN NSA_DATA MPIEXEC [quick|full]" "$@"
nsa_train=$1
nsa_data=$2
mpiexec=$3
mode=${4:-quick}
cli_workdir nsa_mpi
export NSA_CPU_THREADS=1  # processes share the cores; results do not depend on the thread count

mpi_flags=(--oversubscribe --bind-to none)
[[ $(id -u) -eq 0 ]] && mpi_flags+=(--allow-run-as-root)

"$nsa_data" synth --out "$work/data" --train-tokens 200000 --val-tokens 20000 --shard-tokens 100000 \
  --vocab 512 >/dev/null || { echo "FAIL: nsa-data synth"; exit 1; }

# A model every layout can split: 4 KV heads (TP up to 4), 4 experts for the MoE variant.
cat >"$work/model.yaml" <<YAML
seed: 7
model: {vocab_size: 512, d_model: 64, n_layers: 2, n_heads: 8, n_kv_heads: 4, ffn_hidden: 128,
        tie_embeddings: false}
data: {train: "$work/data/train_*.bin", val: "$work/data/val_*.bin"}
optimizer: {lr: 3.0e-3}
schedule: {type: cosine, warmup_steps: 2}
training: {max_steps: 6, micro_batch_size: 1, global_batch_size: 8, seq_len: 64, device: cpu,
           eval_interval: 6, eval_batches: 2}
checkpoint: {interval: 0}
logging: {interval: 1, progress: off}
YAML
moe=(--set moe.n_experts=4 --set moe.top_k=2 --set moe.n_shared_experts=1 --set moe.expert_hidden=64)
nsa=(--set attention.type=nsa --set attention.nsa.cmp_block=8 --set attention.nsa.cmp_stride=4
     --set attention.nsa.slc_block=16 --set attention.nsa.slc_top_n=2 --set attention.nsa.slc_local_blocks=1
     --set attention.nsa.window=16 --set attention.nsa.separate_kv=true)

# train NAME NP ARGS...: one run, logging into $work/NAME; fails the case on a non-zero exit.
train() {
  local name=$1 np=$2
  shift 2
  local cmd=("$nsa_train" "$work/model.yaml" --set "logging.dir=$work/$name" "$@")
  if [[ $np -gt 1 ]]; then cmd=("$mpiexec" "${mpi_flags[@]}" -np "$np" "${cmd[@]}"); fi
  if ! "${cmd[@]}" >"$work/$name.log" 2>&1; then
    fail "$name" "exit status $? ($np processes); log:"
    tail -5 "$work/$name.log"
    return 1
  fi
}

# same A B [FIRST_STEP]: the losses (and val losses) A and B logged from FIRST_STEP on agree to 1e-5.
same() {
  python3 - "$work/$1/metrics.jsonl" "$work/$2/metrics.jsonl" "${3:-1}" <<'PY' || failures=$((failures + 1))
import json, sys
def losses(path, first):
    out = {}
    for line in open(path):
        r = json.loads(line)
        if r["step"] >= first:
            for k in ("loss", "val_loss"):
                if k in r: out[(int(r["step"]), k)] = r[k]
    return out
a, b = losses(sys.argv[1], int(sys.argv[3])), losses(sys.argv[2], int(sys.argv[3]))
name = sys.argv[2].split("/")[-2] + " vs " + sys.argv[1].split("/")[-2]
if not a or a.keys() != b.keys():
    print(f"FAIL [{name}]: logged steps differ: {sorted(a)} vs {sorted(b)}"); sys.exit(1)
worst = max(abs(a[k] - b[k]) / abs(a[k]) for k in a)
print(f"{'ok  ' if worst <= 1e-5 else 'FAIL'} [{name}]: {len(a)} losses, worst relative difference {worst:.2e}")
sys.exit(0 if worst <= 1e-5 else 1)
PY
}

train one 1 && train dp2 2 && same one dp2
train tp2 2 --set parallel.tensor_parallel_size=2 && same one tp2
train dp2tp2 4 --set parallel.tensor_parallel_size=2 && same one dp2tp2
train dp2_zero1 2 --set parallel.zero1=true && same dp2 dp2_zero1
train dp2tp2_zero1 4 --set parallel.tensor_parallel_size=2 --set parallel.zero1=true && same one dp2tp2_zero1
train moe_one 1 "${moe[@]}" && train moe_tp2 2 "${moe[@]}" --set parallel.tensor_parallel_size=2 &&
  same moe_one moe_tp2
train nsa_one 1 "${nsa[@]}" && train nsa_tp2 2 "${nsa[@]}" --set parallel.tensor_parallel_size=2 &&
  same nsa_one nsa_tp2

# A checkpoint written at TP=2 (step 3, with ZeRO-1 moments) resumes at TP=1 and at DP=2×TP=2 and continues
# exactly like the uninterrupted run.
ck=(--set checkpoint.interval=3 --set checkpoint.keep=5 "${moe[@]}")
train ck_tp2 2 "${ck[@]}" --set checkpoint.dir="$work/ck" --set parallel.tensor_parallel_size=2 \
  --set parallel.zero1=true
rm -f "$work/ck/step_00000006.h5"
mkdir -p "$work/ck4" && cp "$work/ck/step_00000003.h5" "$work/ck4/"
train ck_resume_tp1 1 "${ck[@]}" --set checkpoint.dir="$work/ck" --resume && same ck_tp2 ck_resume_tp1 4
train ck_resume_dp2tp2 4 "${ck[@]}" --set checkpoint.dir="$work/ck4" --set parallel.tensor_parallel_size=2 \
  --resume && same ck_tp2 ck_resume_dp2tp2 4

if [[ $mode == full ]]; then
  # The 8-process layouts of issue 8, and a checkpoint moving between them.
  train dp8 8 && same one dp8
  train dp4tp2 8 --set parallel.tensor_parallel_size=2 && same one dp4tp2
  train dp2tp4 8 --set parallel.tensor_parallel_size=4 && same one dp2tp4
  train moe_dp2tp4 8 "${moe[@]}" --set parallel.tensor_parallel_size=4 && same moe_one moe_dp2tp4
  train ck8 8 "${ck[@]}" --set checkpoint.dir="$work/ck8" --set parallel.tensor_parallel_size=4
  rm -f "$work/ck8/step_00000006.h5"
  train ck8_resume 8 "${ck[@]}" --set checkpoint.dir="$work/ck8" --set parallel.tensor_parallel_size=2 \
    --resume && same ck8 ck8_resume 4
fi

# A layout the model cannot take is one clear line, from every rank, and a non-zero exit.
if "$mpiexec" "${mpi_flags[@]}" -np 2 "$nsa_train" "$work/model.yaml" --set parallel.tensor_parallel_size=4 \
  --set logging.dir="$work/bad" >"$work/bad.log" 2>&1; then
  fail "bad layout" "TP 4 on 2 processes was accepted"
elif ! grep -q "parallel.tensor_parallel_size" "$work/bad.log"; then
  fail "bad layout" "the error does not name parallel.tensor_parallel_size:"
  cat "$work/bad.log"
else
  echo "ok   [bad layout]: $(grep -m1 'error' "$work/bad.log")"
fi

cli_finish "all distributed cases passed"
