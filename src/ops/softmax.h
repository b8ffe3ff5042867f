// Softmax and log-softmax over one dim (numerically stable: max subtracted; f32 accumulation on the GPU).
#pragma once

#include "core/tensor.h"

namespace nsa {

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

}  // namespace nsa
