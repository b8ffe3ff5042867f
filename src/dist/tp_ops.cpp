#include "dist/tp_ops.h"

#include "autograd/node.h"
#include "ops/ops.h"

namespace nsa::dist {

Tensor copy_to_tp(const Tensor& x, Communicator& tp) {
  if (tp.size() == 1) return x;
  Tensor out = x.alias();
  autograd::record("copy_to_tp", {x}, out, [&tp](std::span<const Tensor> g) {
    Tensor sum = clone(g[0]);  // the incoming gradient may be shared: reduce a private copy
    tp.all_reduce(sum);
    return std::vector<Tensor>{sum};
  });
  return out;
}

Tensor reduce_from_tp(const Tensor& x, Communicator& tp) {
  if (tp.size() == 1) return x;
  Tensor out = clone(detach(x));
  tp.all_reduce(out);
  autograd::record("reduce_from_tp", {x}, out, [](std::span<const Tensor> g) { return std::vector<Tensor>{g[0]}; });
  return out;
}

Tensor vocab_parallel_embedding(const Tensor& weight_local, const Tensor& ids, int64_t begin, Communicator& tp) {
  if (tp.size() == 1 && begin == 0) return embedding(weight_local, ids);
  auto [local, mask] = shard_index(ids, begin, weight_local.size(0), weight_local.dtype());
  return reduce_from_tp(mul(embedding(weight_local, local), unsqueeze(mask, -1)), tp);
}

Tensor vocab_parallel_cross_entropy(const Tensor& logits_local, const Tensor& targets, int64_t begin,
                                    Communicator& tp) {
  NSA_CHECK(logits_local.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits_local.size(0),
            "[vocab_parallel_cross_entropy] expected logits [N, V_local] and targets [N], got ",
            logits_local.desc(), " and ", targets.desc());
  const Tensor logits = to(logits_local, logits_local.dtype() == DType::f64 ? DType::f64 : DType::f32);
  // The global row max only shifts the exponentials (the result does not depend on it): no gradient.
  Tensor row_max = contiguous(std::get<0>(max(detach(logits), -1, /*keepdim=*/true)));
  if (tp.size() > 1) tp.all_reduce(row_max, ReduceOp::max);
  const Tensor z = sub(logits, row_max);
  const Tensor sum_exp = reduce_from_tp(sum(exp(z), {-1}), tp);  // [N]
  auto [local, mask] = shard_index(targets, begin, logits.size(1), logits.dtype());
  const Tensor target_z = reduce_from_tp(mul(squeeze(gather(z, 1, unsqueeze(local, 1)), 1), mask), tp);
  return mean(sub(log(sum_exp), target_z));
}

}  // namespace nsa::dist
