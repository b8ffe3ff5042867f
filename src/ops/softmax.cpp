#include "ops/softmax.h"

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/view.h"

namespace nsa {
namespace {

// Softmax over the last dim of a contiguous tensor (the kernel's layout).
Tensor softmax_last(const Tensor& x, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) backend_for(x.device()).softmax(out, x, log);
  autograd::record(name, {x}, out, [y = out.alias(), log](std::span<const Tensor> g) {
    Tensor gin = Tensor::empty(y.shape(), y.dtype(), y.device());
    if (y.numel() > 0) backend_for(y.device()).softmax_backward(gin, contiguous(g[0]), y, log);
    return std::vector<Tensor>{gin};
  });
  return out;
}

Tensor softmax_any(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  detail::check_floating(name, x);
  if (x.dim() == 0) return reshape(softmax_last(reshape(x, {1}), log), {});
  const int d = wrap_dim(dim, x.dim(), name);
  if (d == x.dim() - 1) return softmax_last(contiguous(x), log);
  // Move the dim last, normalise, move it back (the views are differentiable).
  return transpose(softmax_last(contiguous(transpose(x, d, -1)), log), d, -1);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_any(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_any(x, dim, true); }

}  // namespace nsa
