#include "ops/view.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/factory.h"
#include "ops/reduce.h"

namespace nsa {

namespace detail {

Tensor raw_expand(const Tensor& t, const Dims& shape) {
  if (t.shape() == shape) return t;
  const int lead = shape.size() - t.dim();
  NSA_CHECK(lead >= 0, "[expand] cannot expand ", t.desc(), " to fewer dims ", shape.str());
  Dims strides = shape;
  for (int i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      strides[i] = 0;
      continue;
    }
    const int64_t s = t.shape()[i - lead];
    NSA_CHECK(s == shape[i] || s == 1, "[expand] cannot expand ", t.desc(), " to ", shape.str());
    strides[i] = s == shape[i] ? t.strides()[i - lead] : 0;
  }
  return raw_view(t, shape, strides, t.offset());
}

}  // namespace detail

using detail::raw_view;

Dims broadcast_shapes(const Dims& a, const Dims& b, const char* op) {
  const int n = std::max(a.size(), b.size());
  Dims out;
  for (int i = 0; i < n; ++i) {
    const int ia = i - (n - a.size()), ib = i - (n - b.size());
    const int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
    NSA_CHECK(sa == sb || sa == 1 || sb == 1, "[", op, "] shapes ", a.str(), " and ", b.str(),
              " do not broadcast");
    out.push_back(sa == 1 ? sb : sa);
  }
  return out;
}

Tensor reshape(const Tensor& t, const Dims& shape_in) {
  detail::check_defined("reshape", t);
  Dims shape = shape_in;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      NSA_CHECK(infer < 0, "[reshape] more than one -1 in ", shape_in.str());
      infer = i;
    } else {
      NSA_CHECK(shape[i] >= 0, "[reshape] negative size in ", shape_in.str());
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    NSA_CHECK(known > 0 && t.numel() % known == 0, "[reshape] cannot reshape ", t.desc(), " to ",
              shape_in.str());
    shape[infer] = t.numel() / known;
  }
  NSA_CHECK(shape.numel() == t.numel(), "[reshape] cannot reshape ", t.desc(), " (", t.numel(),
            " elements) to ", shape.str());
  if (shape == t.shape()) return t;
  const Tensor base = contiguous(t);  // a copy (recorded) only when the strides forbid a view
  Tensor out = raw_view(base, shape, contiguous_strides(shape), base.offset());
  const Dims from = t.shape();
  autograd::record("reshape", {base}, out, [from](std::span<const Tensor> g) -> std::vector<Tensor> {
    return {reshape(g[0], from)};
  });
  return out;
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  detail::check_defined("flatten", t);
  if (t.dim() == 0) return reshape(t, {1});
  const int s = wrap_dim(start_dim, t.dim(), "flatten"), e = wrap_dim(end_dim, t.dim(), "flatten");
  NSA_CHECK(s <= e, "[flatten] start_dim ", start_dim, " after end_dim ", end_dim);
  Dims shape;
  for (int i = 0; i < s; ++i) shape.push_back(t.shape()[i]);
  shape.push_back(detail::prod(t.shape(), s, e + 1));
  for (int i = e + 1; i < t.dim(); ++i) shape.push_back(t.shape()[i]);
  return reshape(t, shape);
}

Tensor permute(const Tensor& t, const Dims& order) {
  detail::check_defined("permute", t);
  NSA_CHECK(order.size() == t.dim(), "[permute] order ", order.str(), " for a tensor of ", t.dim(), " dims");
  Dims shape = t.shape(), strides = t.strides(), inverse = order;
  std::vector<bool> seen(static_cast<size_t>(t.dim()), false);
  for (int i = 0; i < order.size(); ++i) {
    const int d = wrap_dim(order[i], t.dim(), "permute");
    NSA_CHECK(!seen[d], "[permute] dim ", d, " repeated in ", order.str());
    seen[d] = true;
    shape[i] = t.shape()[d];
    strides[i] = t.strides()[d];
    inverse[d] = i;
  }
  Tensor out = raw_view(t, shape, strides, t.offset());
  autograd::record("permute", {t}, out, [inverse](std::span<const Tensor> g) -> std::vector<Tensor> {
    return {permute(g[0], inverse)};
  });
  return out;
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  detail::check_defined("transpose", t);
  const int a = wrap_dim(dim0, t.dim(), "transpose"), b = wrap_dim(dim1, t.dim(), "transpose");
  Dims order;
  for (int i = 0; i < t.dim(); ++i) order.push_back(i);
  std::swap(order[a], order[b]);
  return permute(t, order);
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  detail::check_defined("narrow", t);
  const int d = wrap_dim(dim, t.dim(), "narrow");
  NSA_CHECK(start >= 0 && length >= 0 && start + length <= t.shape()[d], "[narrow] range [", start, ", ",
            start + length, ") outside dim ", d, " of size ", t.shape()[d]);
  Dims shape = t.shape();
  shape[d] = length;
  Tensor out = raw_view(t, shape, t.strides(), t.offset() + start * t.strides()[d]);
  const Dims full_shape = t.shape();
  autograd::record("narrow", {t}, out, [full_shape, d, start](std::span<const Tensor> g) {
    Tensor grad = zeros(full_shape, g[0].dtype(), g[0].device());
    Tensor window = raw_view(grad, g[0].shape(), grad.strides(), start * grad.strides()[d]);
    copy_(window, g[0]);
    return std::vector<Tensor>{grad};
  });
  return out;
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  detail::check_defined("select", t);
  const int d = wrap_dim(dim, t.dim(), "select");
  const int64_t i = index < 0 ? index + t.shape()[d] : index;
  return squeeze(narrow(t, d, i, 1), d);
}

Tensor expand(const Tensor& t, const Dims& shape) {
  detail::check_defined("expand", t);
  Tensor out = detail::raw_expand(t, shape);
  if (out.is_same(t)) return t;
  const Dims from = t.shape();
  autograd::record("expand", {t}, out,
                   [from](std::span<const Tensor> g) -> std::vector<Tensor> { return {sum_to(g[0], from)}; });
  return out;
}

Tensor squeeze(const Tensor& t, int64_t dim) {
  detail::check_defined("squeeze", t);
  const int d = wrap_dim(dim, t.dim(), "squeeze");
  NSA_CHECK(t.shape()[d] == 1, "[squeeze] dim ", d, " of ", t.desc(), " has size ", t.shape()[d], ", not 1");
  Dims shape = t.shape(), strides = t.strides();
  shape.erase(d);
  strides.erase(d);
  Tensor out = raw_view(t, shape, strides, t.offset());
  const Dims from = t.shape();
  autograd::record("squeeze", {t}, out, [from](std::span<const Tensor> g) -> std::vector<Tensor> {
    return {reshape(g[0], from)};
  });
  return out;
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  detail::check_defined("unsqueeze", t);
  const int d = wrap_dim(dim, t.dim() + 1, "unsqueeze");
  Dims shape = t.shape(), strides = t.strides();
  const int64_t stride = d < t.dim() ? t.strides()[d] * t.shape()[d] : 1;
  shape.insert(d, 1);
  strides.insert(d, stride);
  Tensor out = raw_view(t, shape, strides, t.offset());
  const Dims from = t.shape();
  autograd::record("unsqueeze", {t}, out, [from](std::span<const Tensor> g) -> std::vector<Tensor> {
    return {reshape(g[0], from)};
  });
  return out;
}

Tensor detach(const Tensor& t) { return t.alias(); }

std::vector<Tensor> split(const Tensor& t, const std::vector<int64_t>& sizes, int64_t dim) {
  detail::check_defined("split", t);
  const int d = wrap_dim(dim, t.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  NSA_CHECK(total == t.shape()[d], "[split] sizes add up to ", total, " but dim ", d, " has size ",
            t.shape()[d]);
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t s : sizes) {
    parts.push_back(narrow(t, d, start, s));
    start += s;
  }
  return parts;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  NSA_CHECK(!tensors.empty(), "[cat] no tensors given");
  const Tensor& first = tensors[0];
  detail::check_defined("cat", first);
  const int d = wrap_dim(dim, first.dim(), "cat");
  Dims shape = first.shape();
  shape[d] = 0;
  for (const Tensor& t : tensors) {
    detail::check_defined("cat", t);
    detail::check_same_device("cat", first, t);
    detail::check_same_dtype("cat", first, t);
    NSA_CHECK(t.dim() == first.dim(), "[cat] ranks differ: ", first.desc(), " and ", t.desc());
    for (int i = 0; i < t.dim(); ++i)
      NSA_CHECK(i == d || t.shape()[i] == first.shape()[i], "[cat] shapes differ outside dim ", d, ": ",
                first.desc(), " and ", t.desc());
    shape[d] += t.shape()[d];
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  std::vector<int64_t> sizes;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    backend_for(out.device()).copy(raw_view(out, t.shape(), out.strides(), start * out.strides()[d]), t);
    sizes.push_back(t.shape()[d]);
    start += t.shape()[d];
  }
  autograd::record("cat", tensors, std::span<Tensor>(&out, 1),
                   [sizes, d](std::span<const Tensor> g) { return split(g[0], sizes, d); });
  return out;
}

}  // namespace nsa
