// A tiny language-model step for tests that need a whole step (memory, graphs): embedding, RMSNorm,
// RoPE, softmax attention, SwiGLU, matmuls and cross-entropy, on any device and float dtype.
#pragma once

#include <vector>

#include "ops/ops.h"

namespace nsa::test {

// Token ids, targets and positions of a [2, 8] batch; `variant` changes the ids and targets.
struct TinyBatch {
  Tensor ids, targets, positions;
  TinyBatch(Device d, int variant) {
    std::vector<int64_t> ids_v(16), tg_v(16), pos_v(16);
    for (int i = 0; i < 16; ++i) {
      ids_v[i] = (3 + i * variant) % 50;
      tg_v[i] = (7 + 5 * i * variant) % 50;
      pos_v[i] = i % 8;
    }
    ids = from_vector<int64_t>(ids_v, {2, 8}, DType::i64, d);
    targets = from_vector<int64_t>(tg_v, {2, 8}, DType::i64, d);
    positions = from_vector<int64_t>(pos_v, {16}, DType::i64, d);
  }
};

struct TinyNet {
  std::vector<Tensor> params;
  TinyNet(Device d, DType dt) {
    Generator g(5);
    for (Dims s : {Dims{50, 32}, Dims{32}, Dims{64, 32}, Dims{64, 32}, Dims{32, 64}, Dims{50, 32}}) {
      Tensor p = to(randn(s, DType::f32, Device::cpu(), &g) * 0.1, d, dt);
      params.push_back(detach(p).set_requires_grad(true));
    }
  }
  Tensor loss(const TinyBatch& b) const {
    Tensor x = embedding(params[0], b.ids);  // [2, 8, 32]
    x = rms_norm(x, params[1]);
    Tensor q = rope(reshape(x, {2, 8, 4, 8}), b.positions);  // 4 heads of 8
    Tensor att = softmax(matmul(reshape(q, {2, 8, 32}), reshape(x, {2, 8, 32}), false, true), -1);
    x = add(x, matmul(att, x));
    Tensor h = swiglu(linear(x, params[2]), linear(x, params[3]));
    x = add(x, linear(h, params[4]));
    return cross_entropy(linear(x, params[5]), b.targets);
  }
  void clear_grads() {
    for (Tensor& p : params) p.set_grad(Tensor());
  }
};

}  // namespace nsa::test
