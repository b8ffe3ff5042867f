// The small building blocks: Linear (no bias, PyTorch layout [out, in]), Embedding, RMSNorm. Each casts its
// f32 master weight to the dtype of the activations it meets, so the compute dtype is chosen once (at the
// embedding) and flows through the model.
#pragma once

#include <cstdint>

#include "core/random.h"
#include "nn/module.h"

namespace nsa::nn {

// Where and how parameters are created. Init draws from `gen` in registration order, so a model built
// from the same seed has the same weights on every device (Philox is bit-identical on CPU and CUDA).
struct InitContext {
  Device device = Device::cpu();
  DType dtype = DType::f32;  // master weights: f32 (f64 for gradient checks)
  Generator* gen = nullptr;
  double init_std = 0.02;
};

class Linear : public Module {
 public:
  // weight [out, in] ~ N(0, std²).
  Linear(const InitContext& ctx, int64_t in, int64_t out, double std);
  Tensor forward(const Tensor& x) const;  // [..., in] -> [..., out]
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
};

class Embedding : public Module {
 public:
  Embedding(const InitContext& ctx, int64_t vocab, int64_t dim);
  // ids [...] (i32/i64) -> [..., dim] in `compute` dtype.
  Tensor forward(const Tensor& ids, DType compute) const;
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
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

}  // namespace nsa::nn
