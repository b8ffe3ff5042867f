#include "ops/matmul.h"

#include <algorithm>

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/view.h"

namespace nsa {
namespace {

// How the GEMM reads the last two dims [rows, cols] of a tensor: row-major with leading dimension ld, or
// (trans) column-major, which is how a transposed view of a row-major matrix looks. Anything else is
// copied to contiguous first.
struct Operand {
  Tensor t;
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

Operand describe(const Tensor& x) {
  const int64_t rows = x.size(-2), cols = x.size(-1), sr = x.stride(-2), sc = x.stride(-1);
  const int64_t bs = x.dim() == 3 ? x.stride(0) : 0;
  if (sc == 1 && (rows == 1 || sr >= cols)) return {x, false, std::max<int64_t>({sr, cols, 1}), bs};
  if (sr == 1 && (cols == 1 || sc >= rows)) return {x, true, std::max<int64_t>({sc, rows, 1}), bs};
  Tensor c = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_for(x.device()).copy(c, x);
  return {c, false, std::max<int64_t>(cols, 1), x.dim() == 3 ? rows * cols : 0};
}

// C = A·B for A [m, k] or [batch, m, k] and B [k, n] or [batch, k, n] (no broadcasting of batches here).
Tensor gemm_op(const Tensor& A, const Tensor& B) {
  const bool batched = A.dim() == 3;
  const int64_t m = A.size(-2), k = A.size(-1), n = B.size(-1);
  const int64_t batch = batched ? A.size(0) : 1;
  Tensor out = Tensor::empty(batched ? Dims{batch, m, n} : Dims{m, n}, A.dtype(), A.device());
  if (out.numel() > 0) {
    if (k == 0) {
      backend_for(out.device()).fill(out, 0.0);
    } else {
      const Operand a = describe(A), b = describe(B);
      GemmArgs args;
      args.out = out;
      args.a = a.t;
      args.b = b.t;
      args.trans_a = a.trans;
      args.trans_b = b.trans;
      args.batch = batch;
      args.m = m;
      args.n = n;
      args.k = k;
      args.lda = a.ld;
      args.ldb = b.ld;
      args.ldc = n;
      args.stride_a = a.batch_stride;
      args.stride_b = b.batch_stride;
      args.stride_c = batched ? m * n : 0;
      backend_for(out.device()).gemm(args);
    }
  }
  const bool need_a = A.requires_grad(), need_b = B.requires_grad();
  autograd::record(
      "matmul", {A, B}, out,
      [As = need_b ? A.alias() : Tensor(), Bs = need_a ? B.alias() : Tensor()](std::span<const Tensor> g) {
        // dA = dC·Bᵀ, dB = Aᵀ·dC (transposes are views: the GEMM reads them as such).
        return std::vector<Tensor>{Bs.defined() ? gemm_op(g[0], transpose(Bs, -1, -2)) : Tensor(),
                                   As.defined() ? gemm_op(transpose(As, -1, -2), g[0]) : Tensor()};
      });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  detail::check_floating("matmul", a, "first operand");
  detail::check_floating("matmul", b, "second operand");
  detail::check_same_device("matmul", a, b);
  detail::check_same_dtype("matmul", a, b);
  NSA_CHECK(a.dim() >= 2 && (b.dim() == 2 || b.dim() == 3),
            "[matmul] expected a [..., m, k] and b [k, n] or "
            "[batch, k, n], got ",
            a.desc(), " and ", b.desc());
  const Tensor A = trans_a ? transpose(a, -1, -2) : a;
  const Tensor B = trans_b ? transpose(b, -1, -2) : b;
  NSA_CHECK(A.size(-1) == B.size(-2), "[matmul] inner dims differ: ", A.shape().str(), " x ", B.shape().str(),
            trans_a || trans_b ? " (after transposes)" : "");
  if (B.dim() == 3) {
    NSA_CHECK(A.dim() == 3 && A.size(0) == B.size(0),
              "[matmul] batched product needs a [batch, m, k] with the "
              "same batch, got ",
              A.shape().str(), " x ", B.shape().str());
    return gemm_op(A, B);
  }
  if (A.dim() == 2) return gemm_op(A, B);
  // Fold the leading dims of A into m: one large GEMM instead of a batch of small ones.
  Dims out_shape = A.shape();
  out_shape[out_shape.size() - 1] = B.size(-1);
  return reshape(gemm_op(reshape(A, {-1, A.size(-1)}), B), out_shape);
}

Tensor linear(const Tensor& x, const Tensor& weight) {
  NSA_CHECK(weight.defined() && weight.dim() == 2, "[linear] expected weight [out, in], got ", weight.desc());
  return matmul(x, weight, false, true);
}

}  // namespace nsa
