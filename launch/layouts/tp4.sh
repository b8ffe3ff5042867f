#!/usr/bin/env bash
# Layout tp4: 4 GPUs of one node = DP 1 × TP 4 (docs/distributed.md).
#   bash launch/layouts/tp4.sh CONFIG [--set ...]      e.g. CONFIG=configs/dense-125m.yaml
set -euo pipefail
exec bash "$(dirname "$0")/../mpi_train.sh" 4 "$@" --set parallel.tensor_parallel_size=4
