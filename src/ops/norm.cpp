#include "ops/norm.h"

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/view.h"

namespace nsa {

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  detail::check_floating("rms_norm", x);
  detail::check_floating("rms_norm", weight, "weight");
  detail::check_same_device("rms_norm", x, weight);
  detail::check_same_dtype("rms_norm", x, weight);
  NSA_CHECK(x.dim() >= 1, "[rms_norm] expected x [..., dim], got ", x.desc());
  const int64_t dim = x.size(-1);
  NSA_CHECK(weight.dim() == 1 && weight.size(0) == dim, "[rms_norm] expected weight of shape [", dim,
            "], got ", weight.desc());
  NSA_CHECK(eps > 0, "[rms_norm] expected eps > 0, got ", eps);
  const Tensor xc = contiguous(x);
  const Tensor w = contiguous(weight);
  const int64_t rows = dim ? xc.numel() / dim : 0;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rstd = Tensor::empty({rows}, x.dtype() == DType::f64 ? DType::f64 : DType::f32, x.device());
  if (xc.numel() > 0) backend_for(x.device()).rms_norm(y, rstd, xc, w, eps);
  autograd::record(
      "rms_norm", {xc, w}, y,
      [xs = xc.alias(), ws = w.alias(), rstd, need_w = w.requires_grad()](std::span<const Tensor> g) {
        Tensor gx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
        Tensor gw = need_w ? Tensor::empty(ws.shape(), ws.dtype(), ws.device()) : Tensor();
        if (xs.numel() > 0) {
          backend_for(xs.device()).rms_norm_backward(gx, gw, contiguous(g[0]), xs, ws, rstd);
        } else if (gw.defined()) {
          fill_(gw, 0.0);
        }
        return std::vector<Tensor>{gx, gw};
      });
  return y;
}

}  // namespace nsa
