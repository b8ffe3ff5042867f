// DistributedOptimizer: AdamW over the parameters of one process of a DP × TP job, with the gradient
// communication that makes every replica take the same step.
//
//   DP (data parallel): gradients are averaged over the DP group in buckets (~bucket_mb each, parameters in
//   reverse registration order, which is roughly the order backward finishes them). A bucket is reduced as
//   soon as every gradient in it is final (post-accumulate hooks on the leaves, armed only for the last
//   micro-batch of a step), on a separate CUDA stream ordered by events, so communication overlaps the rest
//   of the backward pass. Buckets are launched strictly in index order so every rank issues the same
//   collectives in the same order; parameters that got no gradient (an MoE expert no token chose) count as
//   zeros.
//   ZeRO-1 (zero1): the AdamW moments are sharded over the DP group. Each bucket is reduce-scattered
//   instead of all-reduced, each rank updates its 1/dp of every bucket, and the updated parameters are
//   all-gathered back.
//   TP (tensor parallel): parameters marked tp_partial_grad (replicated, but each TP rank computes only part
//   of the gradient) are all-reduced over the TP group; the global grad norm counts tp_replicated (and
//   tp_partial_grad) parameters once and sums the sharded ones over TP.
//
// With one process (self communicators), or whenever dp = tp = 1, this is exactly nsa::AdamW: same
// arithmetic, same results. With dp > 1 a parameter that got no gradient on any DP rank is stepped with a
// zero gradient (its moments decay), where nsa::AdamW would skip it.
//
// Gradients after finish_backward: plain DP sets each parameter's .grad to a view of its slice of the
// reduced bucket buffer (valid until the next step's backward; zero_grad() drops the views and must run
// before the next step's first backward). ZeRO-1 drops the parameters' .grad (only this rank's pieces were
// reduced; grad_pieces() lists them) and step() then reuses the buffers for the parameter all-gather.
// Per step: for each micro-batch { prepare_backward(last); backward(loss / accum) } → finish_backward() →
// grad_norm() → clip_coefficient → step(lr, coef) → zero_grad().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/tensor.h"
#include "dist/layout.h"

namespace nsa::dist {

struct DistParam {
  std::string name;              // unique; names the optimizer state entries
  Tensor param;                  // contiguous f32 leaf (requires_grad), this rank's shard
  bool decay = true;             // decoupled weight decay applies
  bool tp_partial_grad = false;  // all-reduce the gradient over TP before the step
  bool tp_replicated = false;    // identical on every TP rank (count once in the grad norm)
};

struct DistOptions {
  bool zero1 = false;
  double bucket_mb = 25.0;
};

class DistributedOptimizer {
 public:
  DistributedOptimizer(std::vector<DistParam> params, const OptimizerConfig& config, ProcessGroups& groups,
                       DistOptions options = {});
  ~DistributedOptimizer();

  // Call before each micro-batch's backward; `last` arms the hooks that start the DP reduction (earlier
  // micro-batches only accumulate locally).
  void prepare_backward(bool last);
  // After the last micro-batch's backward: launches what is left, makes the current stream wait for the
  // communication, reduces the TP partial gradients. Afterwards grads are the global-batch mean.
  void finish_backward();
  // Global L2 norm of the (reduced) gradients over all DP × TP ranks: a one-element f32 device tensor (no
  // host sync). Call after finish_backward.
  Tensor grad_norm();
  // AdamW step at `lr` with every gradient multiplied by grad_scale (one-element f32 device tensor or
  // undefined for 1), then (ZeRO-1) the all-gather of the updated parameters.
  void step(double lr, const Tensor& grad_scale = Tensor());
  void zero_grad();
  int64_t step_count() const;

  // The reduced gradients this rank holds, after finish_backward (for tests and diagnostics): plain DP one
  // whole flattened gradient per parameter that has one (begin 0); ZeRO-1 the owned pieces, `begin` being
  // the first element of the flattened parameter the piece covers.
  struct GradPiece {
    std::string name;
    int64_t begin = 0;
    Tensor grad;  // 1-D f32
  };
  std::vector<GradPiece> grad_pieces() const;

  // The optimizer state of this rank's parameters, unsharded over DP: ("exp_avg/<name>", m) and
  // ("exp_avg_sq/<name>", v) in parameter order, shaped like the parameters. Collective over DP (every DP
  // rank must call it); the tensors may be live moments: write them out before the next step.
  std::vector<std::pair<std::string, Tensor>> state();
  // The inverse (every rank passes the full state of its parameters; ZeRO-1 keeps its shard).
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count,
                  const std::string& source);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nsa::dist
