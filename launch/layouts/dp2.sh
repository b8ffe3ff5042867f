#!/usr/bin/env bash
# Layout dp2: 2 GPUs of one node = DP 2 × TP 1 (docs/distributed.md).
#   bash launch/layouts/dp2.sh CONFIG [--set ...]      e.g. CONFIG=configs/dense-125m.yaml
set -euo pipefail
exec bash "$(dirname "$0")/../mpi_train.sh" 2 "$@" --set parallel.tensor_parallel_size=1
