#include "ops/reduce.h"

#include <algorithm>

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/indexing.h"
#include "ops/view.h"

namespace nsa {
namespace {

struct Plan {
  Tensor input;  // contiguous, read as [outer, n, inner]
  int64_t outer = 1, n = 1, inner = 1;
  Dims out_shape;   // without the reduced dims
  Dims keep_shape;  // reduced dims kept as 1
};

// Normalises `dims` and arranges the input so that the reduced dims form one contiguous block: in place
// when they already are adjacent, otherwise by moving them last (a copy).
Plan plan_reduction(const char* op, const Tensor& t, const std::vector<int64_t>& dims_in) {
  std::vector<int> dims;
  if (dims_in.empty()) {
    for (int i = 0; i < t.dim(); ++i) dims.push_back(i);
  } else {
    for (int64_t d : dims_in) dims.push_back(wrap_dim(d, t.dim(), op));
  }
  std::sort(dims.begin(), dims.end());
  NSA_CHECK(std::adjacent_find(dims.begin(), dims.end()) == dims.end(), "[", op, "] a dim is repeated");
  Plan p;
  std::vector<bool> reduced(static_cast<size_t>(t.dim()), false);
  for (int d : dims) reduced[d] = true;
  for (int i = 0; i < t.dim(); ++i) {
    p.keep_shape.push_back(reduced[i] ? 1 : t.shape()[i]);
    if (!reduced[i]) p.out_shape.push_back(t.shape()[i]);
  }
  const bool adjacent = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int>(dims.size());
  if (adjacent) {
    p.input = t.is_contiguous() ? t : contiguous(t.alias());
    if (!dims.empty()) {
      p.outer = detail::prod(t.shape(), 0, dims.front());
      p.n = detail::prod(t.shape(), dims.front(), dims.back() + 1);
      p.inner = detail::prod(t.shape(), dims.back() + 1, t.dim());
    } else {
      p.outer = t.numel();
    }
  } else {
    Dims order;
    for (int i = 0; i < t.dim(); ++i)
      if (!reduced[i]) order.push_back(i);
    for (int d : dims) order.push_back(d);
    p.input = contiguous(permute(t.alias(), order));
    p.outer = p.out_shape.numel();
    p.n = t.numel() / std::max<int64_t>(p.outer, 1);
    p.inner = 1;
  }
  return p;
}

Tensor sum_impl(const char* op, const Tensor& t, const std::vector<int64_t>& dims, bool keepdim,
                bool average) {
  detail::check_floating(op, t);
  Plan p = plan_reduction(op, t, dims);
  const double scale = average ? 1.0 / static_cast<double>(std::max<int64_t>(p.n, 1)) : 1.0;
  Tensor out = Tensor::empty(keepdim ? p.keep_shape : p.out_shape, t.dtype(), t.device());
  if (p.n == 0) {
    fill_(out, 0.0);
  } else {
    backend_for(t.device()).reduce(ReduceOp::sum, out, Tensor(), p.input, p.outer, p.n, p.inner, scale);
  }
  autograd::record(op, {t}, out, [keep = p.keep_shape, full = t.shape(), scale](std::span<const Tensor> g) {
    Tensor grad = contiguous(expand(reshape(g[0], keep), full));
    if (scale != 1.0) grad = mul_scalar(grad, scale);
    return std::vector<Tensor>{grad};
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl("sum", t, dims, keepdim, false);
}
Tensor sum(const Tensor& t) { return sum_impl("sum", t, {}, false, false); }
Tensor mean(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl("mean", t, dims, keepdim, true);
}
Tensor mean(const Tensor& t) { return sum_impl("mean", t, {}, false, true); }

std::pair<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim) {
  detail::check_floating("max", t);
  const int d = wrap_dim(dim, t.dim(), "max");
  NSA_CHECK(t.shape()[d] > 0, "[max] dim ", d, " of ", t.desc(), " is empty");
  Plan p = plan_reduction("max", t, {d});
  Tensor values = Tensor::empty(p.keep_shape, t.dtype(), t.device());
  Tensor indices = Tensor::empty(p.keep_shape, DType::i64, t.device());
  backend_for(t.device()).reduce(ReduceOp::max, values, indices, p.input, p.outer, p.n, p.inner, 1.0);
  autograd::record("max", {t}, values, [idx = indices, full = t.shape(), d](std::span<const Tensor> g) {
    Tensor grad = zeros(full, g[0].dtype(), g[0].device());
    return std::vector<Tensor>{scatter_add(grad, d, idx, g[0])};
  });
  if (!keepdim) return {squeeze(values, d), squeeze(indices, d)};
  return {values, indices};
}

Tensor sum_to(const Tensor& t, const Dims& shape) {
  if (t.shape() == shape) return t;
  const int lead = t.dim() - shape.size();
  NSA_CHECK(lead >= 0, "[sum_to] cannot sum ", t.desc(), " to more dims ", shape.str());
  std::vector<int64_t> dims;
  for (int i = 0; i < t.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
    } else if (shape[i - lead] == 1 && t.shape()[i] != 1) {
      dims.push_back(i);
    } else {
      NSA_CHECK(shape[i - lead] == t.shape()[i], "[sum_to] cannot sum ", t.desc(), " to ", shape.str());
    }
  }
  if (dims.empty()) return reshape(t, shape);
  return reshape(sum(t, dims, true), shape);
}

}  // namespace nsa
