#include "ops/op_cases.h"

#include "ops/ops.h"

namespace nsa::test {
namespace {

using K = InputSpec::Kind;
using V = std::vector<Tensor>;

InputSpec normal(Dims shape, bool grad = true) { return {shape, K::normal, 0, grad}; }
InputSpec positive(Dims shape) { return {shape, K::positive, 0, true}; }
InputSpec index(Dims shape, int64_t high) { return {shape, K::index, high, false}; }
InputSpec targets(Dims shape, int64_t high) { return {shape, K::targets, high, false}; }

void add_case(std::vector<OpCase>& out, std::string name, std::vector<InputSpec> inputs, OpFn fn,
              double bf16_tol = 1e-2, bool gradcheck = true) {
  out.push_back({std::move(name), std::move(inputs), std::move(fn), gradcheck, bf16_tol});
}

std::vector<OpCase> build() {
  std::vector<OpCase> c;
  // ---- elementwise, with broadcasting ----
  const std::vector<std::pair<Dims, Dims>> bshapes = {
      {{3, 5}, {5}}, {{2, 1, 7}, {1, 4, 7}}, {{31}, {31}}, {{113, 3}, {113, 1}}, {{1}, {33}}};
  for (size_t i = 0; i < bshapes.size(); ++i) {
    const auto& [a, b] = bshapes[i];
    const std::string s = std::to_string(i);
    add_case(c, "add_" + s, {normal(a), normal(b)}, [](const V& x) { return V{add(x[0], x[1])}; });
    add_case(c, "sub_" + s, {normal(a), normal(b)}, [](const V& x) { return V{sub(x[0], x[1])}; });
    add_case(c, "mul_" + s, {normal(a), normal(b)}, [](const V& x) { return V{mul(x[0], x[1])}; });
    add_case(c, "div_" + s, {normal(a), positive(b)}, [](const V& x) { return V{div(x[0], x[1])}; });
  }
  const std::vector<Dims> ushapes = {{1}, {31}, {33, 5}, {2, 3, 19}};
  for (size_t i = 0; i < ushapes.size(); ++i) {
    const Dims s = ushapes[i];
    const std::string n = std::to_string(i);
    add_case(c, "neg_" + n, {normal(s)}, [](const V& x) { return V{neg(x[0])}; });
    add_case(c, "exp_" + n, {normal(s)}, [](const V& x) { return V{exp(x[0])}; });
    add_case(c, "log_" + n, {positive(s)}, [](const V& x) { return V{log(x[0])}; });
    add_case(c, "sqrt_" + n, {positive(s)}, [](const V& x) { return V{sqrt(x[0])}; });
    add_case(c, "rsqrt_" + n, {positive(s)}, [](const V& x) { return V{rsqrt(x[0])}; });
    add_case(c, "square_" + n, {normal(s)}, [](const V& x) { return V{square(x[0])}; });
    add_case(c, "reciprocal_" + n, {positive(s)}, [](const V& x) { return V{reciprocal(x[0])}; });
    add_case(c, "add_scalar_" + n, {normal(s)}, [](const V& x) { return V{add_scalar(x[0], 0.75)}; });
    add_case(c, "mul_scalar_" + n, {normal(s)}, [](const V& x) { return V{mul_scalar(x[0], -1.5)}; });
    add_case(c, "pow_scalar_" + n, {positive(s)}, [](const V& x) { return V{pow_scalar(x[0], 1.7)}; });
    add_case(c, "sigmoid_" + n, {normal(s)}, [](const V& x) { return V{sigmoid(x[0])}; });
    add_case(c, "silu_" + n, {normal(s)}, [](const V& x) { return V{silu(x[0])}; });
    add_case(c, "tanh_" + n, {normal(s)}, [](const V& x) { return V{tanh(x[0])}; });
    add_case(c, "relu_" + n, {normal(s)}, [](const V& x) { return V{relu(x[0])}; });
    add_case(c, "swiglu_" + n, {normal(s), normal(s)}, [](const V& x) { return V{swiglu(x[0], x[1])}; });
  }
  // Non-contiguous operands: a transposed view and a narrowed view feed the elementwise kernels directly.
  add_case(c, "mul_transposed", {normal({7, 33}), normal({33, 7})},
           [](const V& x) { return V{mul(transpose(x[0], 0, 1), x[1])}; });
  add_case(c, "silu_narrowed", {normal({5, 40})}, [](const V& x) { return V{silu(narrow(x[0], 1, 3, 31))}; });

  // ---- reductions ----
  add_case(c, "sum_all", {normal({3, 31})}, [](const V& x) { return V{sum(x[0])}; });
  add_case(c, "sum_last", {normal({5, 33})}, [](const V& x) { return V{sum(x[0], {-1})}; });
  add_case(c, "sum_first_keepdim", {normal({113, 7})}, [](const V& x) { return V{sum(x[0], {0}, true)}; });
  add_case(c, "sum_middle", {normal({3, 9, 5})}, [](const V& x) { return V{sum(x[0], {1})}; });
  add_case(c, "sum_outer_pair", {normal({3, 4, 5})}, [](const V& x) { return V{sum(x[0], {0, 2})}; });
  add_case(
      c, "sum_long_row", {normal({2, 5000})}, [](const V& x) { return V{sum(x[0], {1})}; }, 1e-2, false);
  add_case(
      c, "sum_long_col", {normal({3000, 37})}, [](const V& x) { return V{sum(x[0], {0})}; }, 1e-2, false);
  add_case(c, "mean_last", {normal({4, 31})}, [](const V& x) { return V{mean(x[0], {-1})}; });
  add_case(c, "mean_all", {normal({3, 5, 7})}, [](const V& x) { return V{mean(x[0])}; });
  add_case(c, "max_last", {normal({6, 33})}, [](const V& x) {
    auto [v, i] = max(x[0], -1);
    return V{v, i};
  });
  add_case(c, "max_first_keepdim", {normal({31, 4})}, [](const V& x) {
    auto [v, i] = max(x[0], 0, true);
    return V{v, i};
  });

  // ---- softmax family and the loss ----
  add_case(c, "softmax_last", {normal({4, 33})}, [](const V& x) { return V{softmax(x[0], -1)}; });
  add_case(c, "softmax_dim0", {normal({7, 3, 5})}, [](const V& x) { return V{softmax(x[0], 0)}; });
  add_case(
      c, "softmax_wide", {normal({3, 1000})}, [](const V& x) { return V{softmax(x[0], -1)}; }, 1e-2, false);
  add_case(c, "log_softmax_last", {normal({5, 31})}, [](const V& x) { return V{log_softmax(x[0], -1)}; });
  add_case(c, "log_softmax_dim1", {normal({2, 9, 4})}, [](const V& x) { return V{log_softmax(x[0], 1)}; });
  add_case(c, "cross_entropy_small", {normal({7, 11}), targets({7}, 11)},
           [](const V& x) { return V{cross_entropy(x[0], x[1])}; });
  add_case(c, "cross_entropy_3d", {normal({2, 5, 33}), targets({2, 5}, 33)},
           [](const V& x) { return V{cross_entropy(x[0], x[1])}; });
  add_case(
      c, "cross_entropy_vocab", {normal({9, 5003}), targets({9}, 5003)},
      [](const V& x) { return V{cross_entropy(x[0], x[1])}; }, 1e-2, false);

  // ---- normalisation and position embedding ----
  add_case(c, "rms_norm_small", {normal({3, 8}), normal({8})},
           [](const V& x) { return V{rms_norm(x[0], x[1], 1e-5)}; });
  add_case(c, "rms_norm_odd", {normal({2, 3, 33}), normal({33})},
           [](const V& x) { return V{rms_norm(x[0], x[1], 1e-6)}; });
  add_case(
      c, "rms_norm_wide", {normal({5, 1031}), normal({1031})},
      [](const V& x) { return V{rms_norm(x[0], x[1], 1e-6)}; }, 1e-2, false);
  add_case(
      c, "rms_norm_tall", {normal({2100, 64}), normal({64})},
      [](const V& x) { return V{rms_norm(x[0], x[1], 1e-6)}; }, 1e-2, false);
  add_case(c, "rope_full", {normal({2, 3, 2, 8}), index({6}, 4096)},
           [](const V& x) { return V{rope(x[0], x[1], 10000.0)}; });
  add_case(c, "rope_partial", {normal({5, 3, 12}), index({5}, 100000)},
           [](const V& x) { return V{rope(x[0], x[1], 500000.0, 8)}; });
  add_case(
      c, "rope_long", {normal({113, 4, 64}), index({113}, 70000)},
      [](const V& x) { return V{rope(x[0], x[1], 10000.0)}; }, 1e-2, false);

  // ---- top-k, indexing ----
  add_case(c, "topk_small", {normal({4, 9})}, [](const V& x) {
    auto [v, i] = topk(x[0], 3);
    return V{v, i};
  });
  add_case(c, "topk_rows", {normal({3, 5, 33})}, [](const V& x) {
    auto [v, i] = topk(x[0], 16);
    return V{v, i};
  });
  add_case(
      c, "topk_long", {normal({5, 4099})},
      [](const V& x) {
        auto [v, i] = topk(x[0], 16);
        return V{v, i};
      },
      1e-2, false);
  add_case(c, "embedding", {normal({11, 6}), index({3, 5}, 11)},
           [](const V& x) { return V{embedding(x[0], x[1])}; });
  add_case(
      c, "embedding_wide", {normal({257, 129}), index({1000}, 257)},
      [](const V& x) { return V{embedding(x[0], x[1])}; }, 1e-2, false);
  add_case(c, "embedding_odd", {normal({7, 3}), index({13}, 7)}, [](const V& x) { return V{embedding(x[0], x[1])}; });
  add_case(c, "index_select_first", {normal({9, 5}), index({4}, 9)},
           [](const V& x) { return V{index_select(x[0], 0, x[1])}; });
  add_case(c, "index_add_cols", {normal({3, 5, 2}), index({7}, 5), normal({3, 7, 2})},
           [](const V& x) { return V{index_add(x[0], 1, x[1], x[2])}; });
  add_case(c, "scatter_add_first", {normal({5, 3}), index({8, 3}, 5), normal({8, 3})},
           [](const V& x) { return V{scatter_add(x[0], 0, x[1], x[2])}; });
  add_case(c, "index_select_mid", {normal({3, 7, 4}), index({9}, 7)},
           [](const V& x) { return V{index_select(x[0], 1, x[1])}; });
  add_case(c, "index_add_rows", {normal({6, 5}), index({9}, 6), normal({9, 5})},
           [](const V& x) { return V{index_add(x[0], 0, x[1], x[2])}; });
  add_case(c, "gather_last", {normal({4, 9}), index({4, 5}, 9)},
           [](const V& x) { return V{gather(x[0], 1, x[1])}; });
  add_case(c, "gather_first", {normal({7, 3, 2}), index({4, 3, 2}, 7)},
           [](const V& x) { return V{gather(x[0], 0, x[1])}; });
  add_case(c, "scatter_add_last", {normal({4, 6}), index({4, 9}, 6), normal({4, 9})},
           [](const V& x) { return V{scatter_add(x[0], 1, x[1], x[2])}; });

  // ---- matrix products ----
  add_case(c, "matmul_2d", {normal({5, 7}), normal({7, 3})},
           [](const V& x) { return V{matmul(x[0], x[1])}; });
  add_case(c, "matmul_odd", {normal({31, 33}), normal({33, 1})},
           [](const V& x) { return V{matmul(x[0], x[1])}; });
  add_case(c, "matmul_trans_a", {normal({7, 5}), normal({7, 3})},
           [](const V& x) { return V{matmul(x[0], x[1], true, false)}; });
  add_case(c, "matmul_trans_b", {normal({5, 7}), normal({3, 7})},
           [](const V& x) { return V{matmul(x[0], x[1], false, true)}; });
  add_case(c, "matmul_trans_both", {normal({7, 5}), normal({3, 7})},
           [](const V& x) { return V{matmul(x[0], x[1], true, true)}; });
  add_case(c, "matmul_lead_dims", {normal({2, 3, 4, 6}), normal({6, 5})},
           [](const V& x) { return V{matmul(x[0], x[1])}; });
  add_case(c, "matmul_batched", {normal({3, 4, 6}), normal({3, 6, 5})},
           [](const V& x) { return V{matmul(x[0], x[1])}; });
  add_case(c, "matmul_batched_trans", {normal({3, 6, 4}), normal({3, 5, 6})},
           [](const V& x) { return V{matmul(x[0], x[1], true, true)}; });
  add_case(c, "linear", {normal({2, 5, 16}), normal({9, 16})},
           [](const V& x) { return V{linear(x[0], x[1])}; });
  add_case(
      c, "matmul_large", {normal({127, 515}), normal({515, 129})},
      [](const V& x) { return V{matmul(x[0], x[1])}; }, 1e-2, false);

  // ---- views, copies, concatenation ----
  add_case(c, "reshape_transpose", {normal({4, 6})}, [](const V& x) {
    return V{reshape(transpose(x[0], 0, 1), {3, 8})};
  });
  add_case(c, "permute_contiguous", {normal({2, 3, 4})}, [](const V& x) {
    return V{contiguous(permute(x[0], {2, 0, 1}))};
  });
  add_case(c, "narrow_select", {normal({5, 7})}, [](const V& x) {
    return V{narrow(x[0], 1, 2, 4), select(x[0], 0, -1)};
  });
  add_case(c, "expand_mul", {normal({3, 1}), normal({3, 4})}, [](const V& x) {
    return V{mul(expand(x[0], {3, 4}), x[1])};
  });
  add_case(c, "cat_split", {normal({2, 3}), normal({2, 5}), normal({2, 1})}, [](const V& x) {
    Tensor joined = cat({x[0], x[1], x[2]}, 1);
    auto parts = split(mul(joined, joined), {4, 5}, 1);
    return V{parts[0], parts[1]};
  });
  add_case(c, "squeeze_unsqueeze", {normal({3, 1, 4})},
           [](const V& x) { return V{unsqueeze(squeeze(x[0], 1), 0)}; });
  add_case(
      c, "cast_roundtrip", {normal({3, 33})},
      [](const V& x) { return V{to(to(x[0], DType::f32), x[0].dtype())}; }, 1e-2, false);
  return c;
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = build();
  return cases;
}

std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, Device device, bool requires_grad,
                                uint64_t seed) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const InputSpec& s = c.inputs[i];
    Generator gen(seed * 1000 + i);
    Tensor t;
    switch (s.kind) {
      case K::normal:
        t = randn(s.shape, DType::f32, Device::cpu(), &gen);
        break;
      case K::positive:
        t = rand(s.shape, DType::f32, Device::cpu(), &gen) * 1.5 + 0.5;
        break;
      case K::index:
      case K::targets: {
        const std::vector<float> u = to_vector<float>(rand(s.shape, DType::f32, Device::cpu(), &gen));
        std::vector<int64_t> v(u.size());
        for (size_t j = 0; j < u.size(); ++j) {
          v[j] = std::min<int64_t>(static_cast<int64_t>(u[j] * static_cast<float>(s.high)), s.high - 1);
          if (s.kind == K::targets && j % 4 == 3) v[j] = -100;  // every fourth row ignored
        }
        t = from_vector<int64_t>(v, s.shape);
        break;
      }
    }
    if (s.kind == K::normal || s.kind == K::positive) {
      t = to(t, device, dtype);
      if (requires_grad && s.grad) t = detach(t).set_requires_grad(true);
    } else {
      t = to(t, device);
    }
    out.push_back(t);
  }
  return out;
}

}  // namespace nsa::test
