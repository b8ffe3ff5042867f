#!/usr/bin/env bash
# Example: two nodes with 8 GPUs each (16 processes), launched from the first node with OpenMPI. Copy and
# edit the host names; the build and the data must be at the same path on every node (a shared file
# system), and checkpoint.dir must be shared too (world rank 0 writes, every rank reads on resume).
#   bash launch/multinode_example.sh configs/dense-125m.yaml --set parallel.tensor_parallel_size=8
# TP groups are the 8 consecutive ranks of one node (NVLink); DP runs across the nodes (InfiniBand/RoCE).
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${NSA_HOSTS:-node1:8,node2:8}
build=${NSA_BUILD_DIR:-build}
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
# -x forwards the variables to the remote processes; --map-by ppr:8:node keeps ranks 0-7 on node1.
exec mpirun -H "$hosts" -np 16 --map-by ppr:8:node --bind-to none \
  -x NCCL_NVLS_ENABLE -x NCCL_DEBUG -x NCCL_SOCKET_IFNAME -x NCCL_IB_HCA -x PATH -x LD_LIBRARY_PATH \
  "$PWD/$build/bin/nsa-train" "$@"
