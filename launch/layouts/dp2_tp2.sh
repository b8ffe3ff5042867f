#!/usr/bin/env bash
# Layout dp2_tp2: 4 GPUs of one node = DP 2 × TP 2 (docs/distributed.md).
#   bash launch/layouts/dp2_tp2.sh CONFIG [--set ...]      e.g. CONFIG=configs/dense-125m.yaml
set -euo pipefail
exec bash "$(dirname "$0")/../mpi_train.sh" 4 "$@" --set parallel.tensor_parallel_size=2
