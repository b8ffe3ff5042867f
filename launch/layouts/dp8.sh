#!/usr/bin/env bash
# Layout dp8: 8 GPUs of one node = DP 8 × TP 1 (docs/distributed.md).
#   bash launch/layouts/dp8.sh CONFIG [--set ...]      e.g. CONFIG=configs/dense-125m.yaml
set -euo pipefail
exec bash "$(dirname "$0")/../mpi_train.sh" 8 "$@" --set parallel.tensor_parallel_size=1
