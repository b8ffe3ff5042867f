#!/usr/bin/env bash
# Distributed training on one node: N processes (one per GPU, or CPU processes with the MPI backend) under
# mpirun. Builds nsa-train first when needed (launch/setup.sh + cmake), like launch/train.sh.
#   bash launch/mpi_train.sh NPROC CONFIG [nsa-train arguments...]
#   bash launch/mpi_train.sh 8 configs/dense-125m.yaml --set parallel.tensor_parallel_size=2
# The layout is DP × TP with TP = parallel.tensor_parallel_size and DP = NPROC / TP; process r drives GPU
# r (its local rank). docs/distributed.md explains the layout and what is communicated.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 2 ]]; then
  sed -n 2,7p "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
nproc_job=$1
shift
build=${NSA_BUILD_DIR:-build}

if [[ ! -x "$build/bin/nsa-train" ]]; then
  bash launch/setup.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target nsa-train nsa-data
fi

flags=(--bind-to none)  # each process picks its GPU; CPU binding is left to the OS
[[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
[[ $nproc_job -gt $(nproc) ]] && flags+=(--oversubscribe)
# NVLink SHARP (NVLS) is kept off: the GPU machines we measure on do not support it reliably.
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
exec mpirun "${flags[@]}" -np "$nproc_job" -x NCCL_NVLS_ENABLE -x NSA_CPU_THREADS "$build/bin/nsa-train" "$@"
