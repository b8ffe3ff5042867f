#include "ops/loss.h"

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/view.h"

namespace nsa {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  detail::check_floating("cross_entropy", logits, "logits");
  detail::check_index("cross_entropy", targets, "targets");
  detail::check_same_device("cross_entropy", logits, targets);
  NSA_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, "[cross_entropy] expected logits [..., vocab], got ",
            logits.desc());
  const int64_t vocab = logits.size(-1), rows = logits.numel() / vocab;
  NSA_CHECK(targets.numel() == rows, "[cross_entropy] ", rows, " rows of logits ", logits.desc(), " but ",
            targets.numel(), " targets ", targets.desc());
  const Tensor x = reshape(logits, {rows, vocab});  // differentiable; a copy only if strided
  const Tensor t = contiguous(targets.alias());
  const DType loss_dtype = logits.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor loss = Tensor::empty({}, loss_dtype, logits.device());
  Tensor lse = Tensor::empty({rows}, loss_dtype, logits.device());
  Tensor count = Tensor::empty({}, loss_dtype, logits.device());
  backend_for(logits.device()).cross_entropy(loss, lse, count, x, t, ignore_index);
  autograd::record(
      "cross_entropy", {x}, loss, [xs = x.alias(), t, lse, count, ignore_index](std::span<const Tensor> g) {
        Tensor gx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
        backend_for(xs.device()).cross_entropy_backward(gx, g[0], xs, t, lse, count, ignore_index);
        return std::vector<Tensor>{gx};
      });
  return loss;
}

}  // namespace nsa
