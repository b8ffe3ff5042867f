#!/usr/bin/env bash
# Layout dp4_tp2: 8 GPUs of one node = DP 4 × TP 2 (docs/distributed.md).
#   bash launch/layouts/dp4_tp2.sh CONFIG [--set ...]      e.g. CONFIG=configs/dense-125m.yaml
set -euo pipefail
exec bash "$(dirname "$0")/../mpi_train.sh" 8 "$@" --set parallel.tensor_parallel_size=2
