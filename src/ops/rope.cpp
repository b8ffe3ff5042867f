#include "ops/rope.h"

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/view.h"

namespace nsa {
namespace {

Tensor rope_raw(const Tensor& x3, const Tensor& positions, double theta, int64_t rot_dim, bool inverse) {
  Tensor out = Tensor::empty(x3.shape(), x3.dtype(), x3.device());
  if (x3.numel() > 0) backend_for(x3.device()).rope(out, x3, positions, theta, rot_dim, inverse);
  return out;
}

}  // namespace

Tensor rope(const Tensor& x, const Tensor& positions, double theta, int64_t rot_dim) {
  detail::check_floating("rope", x);
  detail::check_index("rope", positions, "positions");
  detail::check_same_device("rope", x, positions);
  NSA_CHECK(x.dim() >= 2, "[rope] expected x [..., heads, head_dim], got ", x.desc());
  const int64_t heads = x.size(-2), hd = x.size(-1);
  if (rot_dim == 0) rot_dim = hd;
  NSA_CHECK(rot_dim > 0 && rot_dim <= hd && rot_dim % 2 == 0, "[rope] rot_dim must be even and in (0, ", hd,
            "], got ", rot_dim);
  NSA_CHECK(theta > 0, "[rope] expected theta > 0, got ", theta);
  const int64_t tokens = heads > 0 && hd > 0 ? x.numel() / (heads * hd) : 0;
  NSA_CHECK(positions.numel() == tokens, "[rope] ", tokens, " tokens in ", x.desc(), " but ",
            positions.numel(), " positions");
  const Tensor x3 = reshape(x, {tokens, heads, hd});
  const Tensor pos = contiguous(positions.alias());
  Tensor out = rope_raw(x3, pos, theta, rot_dim, false);
  autograd::record("rope", {x3}, out, [pos, theta, rot_dim](std::span<const Tensor> g) {
    return std::vector<Tensor>{rope_raw(contiguous(g[0]), pos, theta, rot_dim, true)};  // rotate back
  });
  return reshape(out, x.shape());
}

}  // namespace nsa
