#include "ops/topk.h"

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/factory.h"
#include "ops/indexing.h"
#include "ops/view.h"

namespace nsa {

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k) {
  detail::check_floating("topk", x);
  NSA_CHECK(x.dim() >= 1, "[topk] expected x [..., n], got ", x.desc());
  const int64_t n = x.size(-1);
  NSA_CHECK(k >= 1 && k <= n, "[topk] k must be in [1, ", n, "], got ", k);
  const Tensor xc = contiguous(x);
  Dims out_shape = x.shape();
  out_shape[out_shape.size() - 1] = k;
  Tensor values = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor indices = Tensor::empty(out_shape, DType::i64, x.device());
  if (xc.numel() > 0) backend_for(x.device()).topk(values, indices, xc, k);
  autograd::record("topk", {xc}, values, [indices, full = xc.shape()](std::span<const Tensor> g) {
    Tensor grad = zeros(full, g[0].dtype(), g[0].device());
    return std::vector<Tensor>{scatter_add(grad, -1, indices, g[0])};
  });
  return {values, indices};
}

}  // namespace nsa
