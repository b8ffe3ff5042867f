// AdamW (Loshchilov & Hutter, decoupled weight decay) over f32 master parameters on one device.
//
// step(lr, grad_scale), with t the step count after the increment and g = grad · grad_scale:
//   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//   p ← p·(1 − lr·wd) − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)     (wd = 0 for no-decay params)
// The CPU computes each element in double and rounds p, m, v to f32 (the reference); CUDA runs the same
// formula in f32 in a multi-tensor kernel (kernels/optim/adamw.h). grad_scale (the clip coefficient) is a
// device scalar, read by the kernel: a step never synchronises with the host. Params without a gradient
// are skipped (their moments stay). docs/optim.md has the details.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/tensor.h"

namespace nsa {

struct OptimParam {
  std::string name;  // unique; names the checkpoint entries
  Tensor param;      // contiguous f32 leaf (requires_grad); updated in place
  bool decay;        // decoupled weight decay applies (see uses_weight_decay)
};

class AdamW {
 public:
  // Moments are allocated as zeros on the params' device now. All params on one device, names unique.
  AdamW(std::vector<OptimParam> params, const OptimizerConfig& config);

  // One update at learning rate `lr`. grad_scale: a one-element f32 tensor on the params' device that
  // multiplies every gradient (the clip coefficient), or an undefined tensor for 1. The grads are read,
  // not modified.
  void step(double lr, const Tensor& grad_scale = Tensor());
  // The same update with the gradients given explicitly, one per param in order (undefined: skip the
  // param), e.g. pieces of a reduced gradient buffer that are no param's own .grad (ZeRO-1).
  void step(double lr, const Tensor& grad_scale, std::span<const Tensor> grads);
  // Drops every param's grad (set_to_none), or fills it with zeros in place.
  void zero_grad(bool set_to_none = true);
  int64_t step_count() const { return step_count_; }

  // Checkpoint state: ("exp_avg/<name>", m), ("exp_avg_sq/<name>", v) per param, in param order. The
  // tensors are the live moments (no copy): write them out before the next step.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Copies saved moments back (any float dtype, any device; converted to f32 on the params' device) and
  // sets the step count. Every entry must be present with the param's shape and no other entry may
  // appear; otherwise InputError "<source>: ..." naming the entry.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count,
                  const std::string& source = "optimizer state");

  const std::vector<OptimParam>& params() const { return params_; }
  // The grads of the params, in order (undefined where a param has none), for global_grad_norm.
  std::vector<Tensor> grads() const;
  const OptimizerConfig& config() const { return config_; }

 private:
  std::vector<OptimParam> params_;
  std::vector<Tensor> exp_avg_;
  std::vector<Tensor> exp_avg_sq_;
  OptimizerConfig config_;
  int64_t step_count_ = 0;
};

}  // namespace nsa
