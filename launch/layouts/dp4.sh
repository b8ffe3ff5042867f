#!/usr/bin/env bash
# Layout dp4: 4 GPUs of one node = DP 4 × TP 1 (docs/distributed.md).
#   bash launch/layouts/dp4.sh CONFIG [--set ...]      e.g. CONFIG=configs/dense-125m.yaml
set -euo pipefail
exec bash "$(dirname "$0")/../mpi_train.sh" 4 "$@" --set parallel.tensor_parallel_size=1
