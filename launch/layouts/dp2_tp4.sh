#!/usr/bin/env bash
# Layout dp2_tp4: 8 GPUs of one node = DP 2 × TP 4 (docs/distributed.md).
#   bash launch/layouts/dp2_tp4.sh CONFIG [--set ...]      e.g. CONFIG=configs/dense-125m.yaml
set -euo pipefail
exec bash "$(dirname "$0")/../mpi_train.sh" 8 "$@" --set parallel.tensor_parallel_size=4
