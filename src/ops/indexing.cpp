#include "ops/indexing.h"

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/factory.h"
#include "ops/view.h"

namespace nsa {
namespace {

// src read as [outer, size(dim), inner].
struct Split3 {
  int64_t outer, n, inner;
};
Split3 split_at(const Tensor& t, int d) {
  return {detail::prod(t.shape(), 0, d), t.shape()[d], detail::prod(t.shape(), d + 1, t.dim())};
}

void check_index_pair(const char* op, const Tensor& data, const Tensor& index) {
  detail::check_index(op, index);
  detail::check_same_device(op, data, index);
}

// A contiguous copy of dst to add into (no autograd: the caller records the op).
Tensor fresh_copy(const Tensor& dst) {
  Tensor out = Tensor::empty(dst.shape(), dst.dtype(), dst.device());
  backend_for(dst.device()).copy(out, dst);
  return out;
}

}  // namespace

Tensor index_select(const Tensor& src, int64_t dim, const Tensor& index) {
  detail::check_defined("index_select", src);
  check_index_pair("index_select", src, index);
  NSA_CHECK(index.dim() <= 1, "[index_select] expected a 1-d index, got ", index.desc());
  const int d = wrap_dim(dim, src.dim(), "index_select");
  const Tensor s = contiguous(src);
  const Tensor idx = contiguous(index.alias());
  const Split3 g3 = split_at(s, d);
  Dims shape = s.shape();
  shape[d] = idx.numel();
  Tensor out = Tensor::empty(shape, s.dtype(), s.device());
  if (out.numel() > 0) backend_for(s.device()).index_select(out, s, idx, g3.outer, g3.n, g3.inner);
  autograd::record("index_select", {s}, out, [idx, full = s.shape(), g3](std::span<const Tensor> g) {
    Tensor grad = zeros(full, g[0].dtype(), g[0].device());
    if (idx.numel() > 0)
      backend_for(grad.device()).index_add(grad, idx, contiguous(g[0]), g3.outer, g3.n, g3.inner);
    return std::vector<Tensor>{grad};
  });
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  detail::check_floating("embedding", weight, "weight");
  check_index_pair("embedding", weight, ids);
  NSA_CHECK(weight.dim() == 2, "[embedding] expected weight [vocab, dim], got ", weight.desc());
  Dims shape = ids.shape();
  shape.push_back(weight.size(1));
  return reshape(index_select(weight, 0, reshape(ids.alias(), {ids.numel()})), shape);
}

Tensor index_add(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  detail::check_floating("index_add", dst, "destination");
  detail::check_floating("index_add", src, "source");
  check_index_pair("index_add", dst, index);
  detail::check_same_dtype("index_add", dst, src);
  detail::check_same_device("index_add", dst, src);
  NSA_CHECK(index.dim() <= 1, "[index_add] expected a 1-d index, got ", index.desc());
  const int d = wrap_dim(dim, dst.dim(), "index_add");
  Dims expect = dst.shape();
  expect[d] = index.numel();
  NSA_CHECK(src.shape() == expect, "[index_add] expected source of shape ", expect.str(), ", got ",
            src.desc());
  const Tensor idx = contiguous(index.alias());
  Tensor out = fresh_copy(dst);
  const Split3 g3 = split_at(out, d);
  if (src.numel() > 0)
    backend_for(out.device()).index_add(out, idx, contiguous(src.alias()), g3.outer, g3.n, g3.inner);
  autograd::record("index_add", {dst, src}, out, [idx, d](std::span<const Tensor> g) {
    return std::vector<Tensor>{g[0], index_select(g[0], d, idx)};
  });
  return out;
}

Tensor gather(const Tensor& src, int64_t dim, const Tensor& index) {
  detail::check_defined("gather", src);
  check_index_pair("gather", src, index);
  const int d = wrap_dim(dim, src.dim(), "gather");
  NSA_CHECK(index.dim() == src.dim(), "[gather] index ", index.desc(), " and source ", src.desc(),
            " differ in rank");
  for (int i = 0; i < src.dim(); ++i)
    NSA_CHECK(i == d || index.shape()[i] == src.shape()[i], "[gather] index ", index.desc(),
              " must match source ", src.desc(), " outside dim ", d);
  const Tensor s = contiguous(src);
  const Tensor idx = contiguous(index.alias());
  const Split3 g3 = split_at(s, d);
  Tensor out = Tensor::empty(idx.shape(), s.dtype(), s.device());
  if (out.numel() > 0) backend_for(s.device()).gather(out, s, idx, g3.outer, g3.n, g3.inner);
  autograd::record("gather", {s}, out, [idx, full = s.shape(), g3](std::span<const Tensor> g) {
    Tensor grad = zeros(full, g[0].dtype(), g[0].device());
    if (idx.numel() > 0)
      backend_for(grad.device()).scatter_add(grad, idx, contiguous(g[0]), g3.outer, g3.n, g3.inner);
    return std::vector<Tensor>{grad};
  });
  return out;
}

Tensor scatter_add(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  detail::check_floating("scatter_add", dst, "destination");
  detail::check_floating("scatter_add", src, "source");
  check_index_pair("scatter_add", dst, index);
  detail::check_same_dtype("scatter_add", dst, src);
  detail::check_same_device("scatter_add", dst, src);
  const int d = wrap_dim(dim, dst.dim(), "scatter_add");
  NSA_CHECK(index.shape() == src.shape(), "[scatter_add] index ", index.desc(), " and source ", src.desc(),
            " must have one shape");
  NSA_CHECK(index.dim() == dst.dim(), "[scatter_add] index ", index.desc(), " and destination ", dst.desc(),
            " differ in rank");
  for (int i = 0; i < dst.dim(); ++i)
    NSA_CHECK(i == d || index.shape()[i] == dst.shape()[i], "[scatter_add] index ", index.desc(),
              " must match destination ", dst.desc(), " outside dim ", d);
  const Tensor idx = contiguous(index.alias());
  Tensor out = fresh_copy(dst);
  const Split3 g3 = split_at(out, d);
  if (src.numel() > 0)
    backend_for(out.device()).scatter_add(out, idx, contiguous(src.alias()), g3.outer, g3.n, g3.inner);
  autograd::record("scatter_add", {dst, src}, out, [idx, d](std::span<const Tensor> g) {
    return std::vector<Tensor>{g[0], gather(g[0], d, idx)};
  });
  return out;
}

}  // namespace nsa

namespace nsa {

std::pair<Tensor, Tensor> shard_index(const Tensor& ids, int64_t begin, int64_t count, DType mask_dtype) {
  detail::check_index("shard_index", ids);
  NSA_CHECK(is_floating(mask_dtype), "[shard_index] mask dtype must be floating, got ", dtype_name(mask_dtype));
  NSA_CHECK(begin >= 0 && count >= 0, "[shard_index] bad shard [", begin, ", ", begin + count, ")");
  const Tensor src = contiguous(ids.alias());
  Tensor local = Tensor::empty(src.shape(), DType::i64, src.device());
  Tensor mask = Tensor::empty(src.shape(), mask_dtype, src.device());
  if (src.numel() > 0) backend_for(src.device()).shard_index(local, mask, src, begin, count);
  return {local, mask};
}

}  // namespace nsa
