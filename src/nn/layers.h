// The small building blocks: Linear (no bias, PyTorch layout [out, in]), Embedding, RMSNorm. Each casts its
// f32 master weight to the dtype of the activations it meets, so the compute dtype is chosen once (at the
// embedding) and flows through the model.
#pragma once

#include <cstdint>

#include "core/random.h"
#include "dist/communicator.h"
#include "nn/module.h"

namespace nsa::nn {

// This process's place in its tensor-parallel group (size 1: no tensor parallelism). Modules keep `comm`
// for the forward's collectives (dist/tp_ops.h); dist/sharding.h says which slice each parameter keeps.
struct TpGroup {
  int rank = 0, size = 1;
  dist::Communicator* comm = nullptr;  // required when size > 1
};

// Where and how parameters are created. Init draws from `gen` in registration order, so a model built
// from the same seed has the same weights on every device (Philox is bit-identical on CPU and CUDA).
struct InitContext {
  Device device = Device::cpu();
  DType dtype = DType::f32;  // master weights: f32 (f64 for gradient checks)
  Generator* gen = nullptr;
  double init_std = 0.02;
  TpGroup tp = {};
};

// Which part of a Linear's weight [out, in] a TP rank keeps: rows (column-parallel: a slice of the
// outputs) or columns (row-parallel: a slice of the inputs). The full weight is drawn first, so every
// rank's slice equals the unsharded model's.
enum class TpSplit { none, rows, cols };

class Linear : public Module {
 public:
  // weight [out, in] ~ N(0, std²), then this TP rank's slice when `split` (and ctx.tp.size > 1).
  Linear(const InitContext& ctx, int64_t in, int64_t out, double std, TpSplit split = TpSplit::none);
  Tensor forward(const Tensor& x) const;  // [..., in] -> [..., out]
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
};

// Under tensor parallelism the rows (vocabulary) are split: this rank holds [vocab_begin, + rows) and the
// lookup is vocabulary-parallel (dist::vocab_parallel_embedding).
class Embedding : public Module {
 public:
  Embedding(const InitContext& ctx, int64_t vocab, int64_t dim);
  // ids [...] (i32/i64) -> [..., dim] in `compute` dtype (replicated over the TP group).
  Tensor forward(const Tensor& ids, DType compute) const;
  const Tensor& weight() const { return weight_; }
  int64_t vocab_begin() const { return vocab_begin_; }

 private:
  Tensor weight_;
  TpGroup tp_;
  int64_t vocab_begin_ = 0;
};

class RMSNorm : public Module {
 public:
  RMSNorm(const InitContext& ctx, int64_t dim, double eps);
  Tensor forward(const Tensor& x) const;

 private:
  Tensor weight_;
  double eps_;
};

// A normal(0, std²) tensor drawn from ctx.gen, in ctx's dtype and device.
Tensor init_normal(const InitContext& ctx, const Dims& shape, double std);
// dist::copy_to_tp / reduce_from_tp over the group: where replicated activations enter rank-local work
// and where rank-local partial sums leave it (the identity without tensor parallelism).
Tensor tp_enter(const TpGroup& tp, const Tensor& x);
Tensor tp_exit(const TpGroup& tp, const Tensor& x);
// This TP rank's chunk of `full` along `dim` (dist::shard_begin bounds), as its own tensor; `full` itself
// when ctx.tp.size == 1.
Tensor tp_slice(const InitContext& ctx, const Tensor& full, int dim);

}  // namespace nsa::nn
