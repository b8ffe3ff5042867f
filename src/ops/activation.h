// Activations: sigmoid, SiLU, SwiGLU (silu(gate) * up, fused), tanh, ReLU.
#pragma once

#include "core/tensor.h"

namespace nsa {

Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor swiglu(const Tensor& gate, const Tensor& up);  // same shapes
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);

}  // namespace nsa
