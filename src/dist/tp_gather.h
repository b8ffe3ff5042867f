// Moving whole tensors between the unsharded (checkpoint) form and this TP rank's shards, following
// dist/sharding.h. Checkpoints are written whole (world rank 0 writes what the TP group gathered), so a
// checkpoint saved at one TP size loads at any other: every rank reads the file and keeps its slice.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/tensor.h"
#include "dist/communicator.h"
#include "dist/sharding.h"

namespace nsa::dist {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The whole tensors of this TP group's parameters (or of anything sharded like them, e.g. optimizer
// moments: `param_name` maps an entry's name to the parameter whose layout it shares). `local` is this
// rank's list, in the model's registration order; every rank of the group must call this with lists that
// differ only in the MoE experts they own. Returns the unsharded tensors (CPU, f32 or the input dtype) in
// the unsharded model's order: split tensors are all-gathered, owned ones broadcast by their owner.
// Collective over `tp`; with tp.size() == 1 returns `local` unchanged.
NamedTensors gather_tp(const NamedTensors& local, const Config& config, Communicator& tp,
                       std::string (*param_name)(const std::string&) = nullptr);

// This rank's part of a whole tensor: the slice of a split tensor, the tensor itself otherwise.
Tensor tp_local_part(const Tensor& full, const TpShard& shard, int tp_rank, int tp_size);

}  // namespace nsa::dist
