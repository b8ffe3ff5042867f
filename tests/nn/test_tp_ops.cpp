// The pieces of tensor parallelism that one process can check: the shard_index primitive (CPU values and
// CUDA vs CPU), the vocabulary-parallel cross-entropy and embedding on a one-rank group (they take their
// general path whenever the shard does not start at 0, and must equal the plain ops, gradients included),
// the sharding table, and a TP=1 model built through the sharded constructors (same weights as before).
// Multi-rank equality (TP=2/4 vs TP=1, losses to 1e-5) is tests/dist/mpi_train.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/random.h"
#include "dist/sharding.h"
#include "dist/tp_gather.h"
#include "dist/tp_ops.h"
#include "ops/ops.h"
#include "test_util.h"

namespace nsa::dist {
namespace {

Tensor random_ids(int64_t n, int64_t vocab, uint64_t seed, DType dtype = DType::i64) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  Generator g(seed);
  Tensor u = empty({n}, DType::f64);
  uniform_(u, 0.0, static_cast<double>(vocab), &g);
  const std::vector<double> d = to_vector<double>(u);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(d[i]);
  return to(from_vector<int64_t>(v, {n}, DType::i64), dtype);
}

TEST(ShardIndex, MapsIdsInsideTheShardAndMasksTheRest) {
  const Tensor ids = from_vector<int64_t>({0, 4, 5, 9, 10, 3}, {2, 3}, DType::i64);
  auto [local, mask] = shard_index(ids, 4, 6, DType::f32);  // shard [4, 10)
  EXPECT_EQ(local.shape(), ids.shape());
  EXPECT_EQ(to_vector<int64_t>(local), (std::vector<int64_t>{0, 0, 1, 5, 0, 0}));
  EXPECT_EQ(to_vector<float>(mask), (std::vector<float>{0, 1, 1, 1, 0, 0}));
}

TEST(ShardIndex, CudaMatchesCpu) {
  NSA_REQUIRE_GPU();
  for (DType id_type : {DType::i32, DType::i64}) {
    for (int64_t n : {1, 37, 4099}) {
      const Tensor ids = random_ids(n, 1000, 11 + n, id_type);
      auto [cl, cm] = shard_index(ids, 333, 334, DType::bf16);
      auto [gl, gm] = shard_index(to(ids, Device::cuda(0)), 333, 334, DType::bf16);
      EXPECT_TRUE(test::equal_values(to(gl, Device::cpu()), cl)) << n;
      EXPECT_TRUE(test::equal_values(to(gm, Device::cpu()), cm)) << n;
      std::printf("shard_index cuda vs cpu n=%lld: identical\n", static_cast<long long>(n));
    }
  }
}

TEST(VocabParallel, CrossEntropyOnOneRankEqualsCrossEntropyWithGradients) {
  auto self = make_self_communicator();
  Generator g(5);
  Tensor logits = empty({6, 11}, DType::f64);
  normal_(logits, 0.0, 2.0, &g);
  logits.set_requires_grad(true);
  const Tensor targets = random_ids(6, 11, 3);
  const Tensor ours = vocab_parallel_cross_entropy(logits, targets, 0, *self);
  const Tensor ref = cross_entropy(logits, targets);
  EXPECT_NEAR(item(ours), item(ref), 1e-12);
  std::string report;
  const double err = test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{vocab_parallel_cross_entropy(in[0], targets, 0, *self)};
      },
      {logits}, &report);
  std::printf("vocab_parallel_cross_entropy gradcheck: %s", report.c_str());
  EXPECT_LT(err, 1e-7);
}

TEST(VocabParallel, CrossEntropyOfAShardCountsOnlyItsColumns) {
  // On a one-rank group a shard starting at `begin` sees targets outside it as absent: a row's loss is
  // logsumexp(shard) - max(shard) - (target logit - max(shard) when the target is inside; 0 otherwise), as
  // the shifted logits are what the ranks exchange. Checked against the formula in double.
  auto self = make_self_communicator();
  const Tensor logits = from_vector<double>({0.5, -1.0, 2.0, 0.1, 0.3, -0.7}, {2, 3}, DType::f64);
  const Tensor targets = from_vector<int64_t>({11, 13}, {2}, DType::i64);  // shard [10, 13): 11 in, 13 out
  const double lse0 = std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0));
  const double lse1 = std::log(std::exp(0.1) + std::exp(0.3) + std::exp(-0.7));
  const double expect = ((lse0 - (-1.0)) + (lse1 - 0.3)) / 2.0;
  EXPECT_NEAR(item(vocab_parallel_cross_entropy(logits, targets, 10, *self)), expect, 1e-12);
}

TEST(VocabParallel, EmbeddingOfAShardGivesZerosOutsideIt) {
  auto self = make_self_communicator();
  Generator g(9);
  Tensor weight = empty({4, 3}, DType::f64);  // rows 20..23 of a larger vocabulary
  normal_(weight, 0.0, 1.0, &g);
  weight.set_requires_grad(true);
  const Tensor ids = from_vector<int64_t>({21, 5, 23, 20, 24}, {5}, DType::i64);
  const Tensor out = vocab_parallel_embedding(weight, ids, 20, *self);
  const std::vector<double> o = to_vector<double>(out), w = to_vector<double>(weight);
  const int64_t rows[5] = {1, -1, 3, 0, -1};
  for (int i = 0; i < 5; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(o[i * 3 + c], rows[i] < 0 ? 0.0 : w[rows[i] * 3 + c]) << i;
  std::string report;
  const double err = test::gradcheck(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{vocab_parallel_embedding(in[0], ids, 20, *self)}; },
      {weight}, &report);
  EXPECT_LT(err, 1e-7) << report;
}

Config small_config() {
  Config c;
  c.model.vocab_size = 23;
  c.model.n_heads = 4;
  c.model.n_kv_heads = 2;
  c.moe.n_experts = 4;
  c.attention.type = "nsa";
  c.attention.nsa.separate_kv = true;
  return c;
}

TEST(Sharding, TableCoversEveryLayoutKind) {
  const Config c = small_config();
  EXPECT_EQ(tp_shard("embed.weight", c, 2).kind, TpShard::Kind::split);
  EXPECT_EQ(tp_shard("blocks.0.attn.wo.weight", c, 2).dim, 1);
  EXPECT_EQ(tp_shard("blocks.0.attn.nsa.gate.weight", c, 2).dim, 0);
  EXPECT_TRUE(tp_shard("blocks.0.attn.nsa.cmp_k.w1", c, 2).partial_grad);
  EXPECT_TRUE(tp_shard("blocks.1.moe.router.weight", c, 2).partial_grad);
  EXPECT_FALSE(tp_shard("blocks.1.attn_norm.weight", c, 2).partial_grad);
  const TpShard expert = tp_shard("blocks.1.moe.experts.3.w_up.weight", c, 2);
  EXPECT_EQ(expert.kind, TpShard::Kind::owned);
  EXPECT_EQ(expert.owner, 1);
  EXPECT_EQ(tp_shard("blocks.1.moe.experts.1.w_up.weight", c, 2).owner, 0);
  EXPECT_THROW(tp_shard("blocks.9.attn.wq.weight", c, 2), InputError);  // no such layer
  EXPECT_THROW(tp_shard("blocks.0.moe.experts.4.w_up.weight", c, 2), InputError);
  // Uneven vocabulary chunks tile [0, 23).
  EXPECT_EQ(shard_begin(23, 0, 2), 0);
  EXPECT_EQ(shard_size(23, 0, 2) + shard_size(23, 1, 2), 23);
  Config bad = c;
  bad.model.n_kv_heads = 3;
  EXPECT_THROW(validate_tp(bad, 2), InputError);
}

TEST(Sharding, LocalPartSlicesSplitTensorsOnly) {
  const Tensor full = from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {5, 2});
  const Tensor part = tp_local_part(full, {TpShard::Kind::split, 0, 0, false}, 1, 2);  // rows [2, 5)
  EXPECT_EQ(to_vector<float>(part), (std::vector<float>{4, 5, 6, 7, 8, 9}));
  const Tensor cols = tp_local_part(full, {TpShard::Kind::split, 1, 0, false}, 0, 2);
  EXPECT_EQ(to_vector<float>(cols), (std::vector<float>{0, 2, 4, 6, 8}));
  EXPECT_EQ(tp_local_part(full, {}, 1, 2).data_ptr(), full.data_ptr());
}

}  // namespace
}  // namespace nsa::dist
