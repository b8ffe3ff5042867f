// Communicators and process groups: the layout arithmetic, the group splits (who is in which TP / DP
// group), every collective for every dtype with its values checked (in place and out of place), the
// one-process communicator, the bucket plan of data parallelism, and the one-line errors.
#include <cmath>
#include <numeric>

#include "dist/grad_buckets.h"
#include "dist/layout.h"
#include "dist/mpi_env.h"
#include "dist_test.h"

namespace nsa {
namespace {

using dist::Communicator;
using dist::ReduceOp;
using test::DistTest;

const DType kDTypes[] = {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64};

// The TP sizes a world of `n` processes can use.
std::vector<int> tp_sizes(int n) {
  std::vector<int> sizes;
  for (int tp = 1; tp <= n; ++tp)
    if (n % tp == 0) sizes.push_back(tp);
  return sizes;
}

Tensor make(const std::vector<double>& v, DType dt, Device d) {
  return from_vector<double>(v, {static_cast<int64_t>(v.size())}, dt, d);
}

std::string where(const Communicator& c, DType dt) {
  return str(c.backend(), " group of ", c.size(), ", rank ", c.rank(), ", ", dtype_name(dt));
}

// Small integers, exact in every dtype (bf16 included), so every result is checked exactly.
double value(int rank, int64_t i) { return static_cast<double>((rank + 1) * (i % 7 + 1)); }
double signed_value(int rank, int64_t i) { return static_cast<double>((rank * 5 + i * 3) % 11 - 5); }

void check_collectives(Communicator& c, Device device) {
  const int r = c.rank(), n = c.size();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(where(c, dt));
    const int64_t len = 37;
    {  // all_reduce sum and max
      std::vector<double> v(len), expect_sum(len, 0.0), expect_max(len, -1e9), w(len);
      for (int64_t i = 0; i < len; ++i) {
        v[i] = value(r, i);
        w[i] = signed_value(r, i);
        for (int q = 0; q < n; ++q) {
          expect_sum[i] += value(q, i);
          expect_max[i] = std::max(expect_max[i], signed_value(q, i));
        }
      }
      const Tensor s = make(v, dt, device), m = make(w, dt, device);
      c.all_reduce(s);
      c.all_reduce(m, ReduceOp::max);
      EXPECT_EQ(to_vector<double>(s), expect_sum);
      EXPECT_EQ(to_vector<double>(m), expect_max);
    }
    {  // all_gather, out of place and in place (the input is this rank's chunk of the output)
      const int64_t k = 5;
      std::vector<double> mine(k), expect;
      for (int64_t i = 0; i < k; ++i) mine[i] = r * 10 + i;
      for (int q = 0; q < n; ++q)
        for (int64_t i = 0; i < k; ++i) expect.push_back(q * 10 + i);
      const Tensor out = zeros({n * k}, dt, device);
      c.all_gather(make(mine, dt, device), out);
      EXPECT_EQ(to_vector<double>(out), expect);
      const Tensor buffer = zeros({n, k}, dt, device);
      copy_(select(buffer, 0, r), make(mine, dt, device));
      c.all_gather(select(buffer, 0, r), buffer);
      EXPECT_EQ(to_vector<double>(buffer), expect);
    }
    {  // reduce_scatter, out of place and in place (the output is this rank's chunk of the input)
      const int64_t k = 6;
      std::vector<double> in(n * k), expect(k, 0.0);
      for (int64_t j = 0; j < n * k; ++j) in[j] = value(r, j + 3);
      for (int q = 0; q < n; ++q)
        for (int64_t i = 0; i < k; ++i) expect[i] += value(q, r * k + i + 3);
      const Tensor out = zeros({k}, dt, device);
      c.reduce_scatter(make(in, dt, device), out);
      EXPECT_EQ(to_vector<double>(out), expect);
      const Tensor buffer = make(in, dt, device);
      c.reduce_scatter(buffer, narrow(buffer, 0, r * k, k));
      EXPECT_EQ(to_vector<double>(narrow(buffer, 0, r * k, k)), expect);
    }
    {  // broadcast from the last rank
      std::vector<double> v(len), expect(len);
      for (int64_t i = 0; i < len; ++i) {
        v[i] = signed_value(r, i);
        expect[i] = signed_value(n - 1, i);
      }
      const Tensor t = make(v, dt, device);
      c.broadcast(t, n - 1);
      EXPECT_EQ(to_vector<double>(t), expect);
    }
  }
  c.barrier();
}

TEST_F(DistTest, LayoutPutsTensorParallelRanksNextToEachOther) {
  const dist::Layout l = dist::make_layout(8, 5, 2, 1, 4);
  EXPECT_EQ(l.tp_size, 2);
  EXPECT_EQ(l.tp_rank, 1);
  EXPECT_EQ(l.dp_size, 4);
  EXPECT_EQ(l.dp_rank, 2);
  EXPECT_EQ(l.str(), "rank 5/8 = dp 2/4 × tp 1/2, local 1/4");
  for (int rank = 0; rank < 12; ++rank) {
    const dist::Layout m = dist::make_layout(12, rank, 3);
    EXPECT_EQ(m.dp_rank * m.tp_size + m.tp_rank, rank);
    EXPECT_EQ(m.dp_size, 4);
  }
  const dist::Layout single = dist::make_layout(1, 0, 1);
  EXPECT_EQ(single.str(), "rank 0/1 = dp 0/1 × tp 0/1, local 0/1");
  try {
    dist::make_layout(4, 0, 3);
    ADD_FAILURE() << "tp 3 of 4 accepted";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "parallel.tensor_parallel_size: expected a divisor of the number of processes (4), got 3");
  }
}

TEST_F(DistTest, MpiEnvSeesTheWorld) {
  const dist::MpiEnv again;  // MPI is up already: a no-op that reports the same world
  EXPECT_EQ(again.world().rank, test::test_world().rank());
  EXPECT_EQ(again.world().size, test::test_world().size());
  EXPECT_GE(again.world().local_size, 1);
  EXPECT_LT(again.world().local_rank, again.world().local_size);
  EXPECT_TRUE(dist::mpi_active());
}

TEST_F(DistTest, GroupsFollowTheLayout) {
  const int world = test::test_world().size(), rank = test::test_world().rank();
  for (const std::string& backend : test::test_backends()) {
    for (int tp : tp_sizes(world)) {
      SCOPED_TRACE(str(backend, ", tp ", tp));
      dist::ProcessGroups g = dist::make_process_groups(backend, tp);
      const Device device = test::backend_device(backend);
      const dist::Layout expect =
          dist::make_layout(world, rank, tp, g.layout.local_rank, g.layout.local_size);
      EXPECT_EQ(g.layout.str(), expect.str());
      EXPECT_EQ(g.world->size(), world);
      EXPECT_EQ(g.world->rank(), rank);
      EXPECT_EQ(g.tp->size(), tp);
      EXPECT_EQ(g.tp->rank(), expect.tp_rank);
      EXPECT_EQ(g.dp->size(), world / tp);
      EXPECT_EQ(g.dp->rank(), expect.dp_rank);
      EXPECT_EQ(g.world->backend(), backend);
      // Who is in my groups: the world ranks gathered over each.
      const Tensor me = full({1}, rank, DType::i64, device);
      const Tensor tp_members = zeros({tp}, DType::i64, device),
                   dp_members = zeros({world / tp}, DType::i64, device);
      g.tp->all_gather(me, tp_members);
      g.dp->all_gather(me, dp_members);
      std::vector<int64_t> want_tp(tp), want_dp(world / tp);
      for (int j = 0; j < tp; ++j) want_tp[j] = expect.dp_rank * tp + j;
      for (int k = 0; k < world / tp; ++k) want_dp[k] = k * tp + expect.tp_rank;
      EXPECT_EQ(to_vector<int64_t>(tp_members), want_tp);
      EXPECT_EQ(to_vector<int64_t>(dp_members), want_dp);
    }
  }
}

TEST_F(DistTest, EveryCollectiveForEveryDtype) {
  const int world = test::test_world().size();
  for (const std::string& backend : test::test_backends()) {
    const int tp = world % 2 == 0 ? 2 : 1;
    dist::ProcessGroups g = dist::make_process_groups(backend, tp);
    const Device device = test::backend_device(backend);
    check_collectives(*g.world, device);
    check_collectives(*g.tp, device);
    check_collectives(*g.dp, device);
  }
}

TEST_F(DistTest, SelfCommunicatorIsTheIdentity) {
  dist::ProcessGroups g = dist::make_single_process_groups();
  EXPECT_EQ(g.layout.str(), "rank 0/1 = dp 0/1 × tp 0/1, local 0/1");
  EXPECT_EQ(g.world->backend(), "self");
  check_collectives(*g.world, Device::cpu());
  check_collectives(*g.dp, Device::cpu());
}

TEST_F(DistTest, BadRequestsAreOneLineErrors) {
  const int world = test::test_world().size();
  try {
    dist::make_process_groups("gloo", 1, "cfg.yaml");
    ADD_FAILURE() << "backend gloo accepted";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "cfg.yaml: communicator backend: expected mpi, nccl or self, got 'gloo'");
  }
  try {
    dist::make_process_groups("mpi", world + 1, "cfg.yaml");
    ADD_FAILURE() << "tp larger than the world accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              str("cfg.yaml: parallel.tensor_parallel_size: expected a divisor of the number "
                  "of processes (",
                  world, "), got ", world + 1));
  }
  if (world > 1) {
    try {
      dist::make_process_groups("self", 1);
      ADD_FAILURE() << "self backend accepted for " << world << " processes";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()), str("communicator backend 'self' needs one process, got ", world));
    }
  } else {
    EXPECT_EQ(dist::make_process_groups("self", 1).dp->backend(), "self");
  }
  if (!cuda::built_with_cuda()) {
    try {
      dist::make_process_groups("nccl", 1);
      ADD_FAILURE() << "nccl accepted without CUDA";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("this build has no CUDA"), std::string::npos) << e.what();
    }
  }
  dist::ProcessGroups g = dist::make_process_groups("mpi", 1);
  const Tensor strided = transpose(zeros({3, 4}), 0, 1);
  EXPECT_THROW(g.world->all_reduce(strided), Error);  // checked before any communication, on every rank
  EXPECT_THROW(g.world->all_gather(zeros({2}), zeros({2 * world + 1})), Error);
  EXPECT_THROW(g.world->broadcast(zeros({2}), world), Error);
}

TEST_F(DistTest, BucketsFollowTheGivenOrderAndPadForZero1) {
  const std::vector<int64_t> numels{5, 3, 10, 2, 7, 0, 4};
  const std::vector<int> order{6, 5, 4, 3, 2, 1, 0};  // reverse registration order
  const std::vector<dist::Bucket> plain = dist::plan_buckets(numels, order, 8, 1);
  // [4, 0, 7] = 11 ≥ 8 | [3, 2] = 12 | [1, 0] = 8 ... (param indices): sizes 11, 12, 8
  ASSERT_EQ(plain.size(), 3u);
  EXPECT_EQ(plain[0].numel, 11);
  EXPECT_EQ(plain[1].numel, 12);
  EXPECT_EQ(plain[2].numel, 8);
  EXPECT_EQ(plain[0].slots.front().param, 6);
  EXPECT_EQ(plain[1].slots.front().param, 3);
  EXPECT_EQ(plain[1].slots.back().offset, 2);
  EXPECT_EQ(plain[2].padded, 8);
  for (int ranks : {1, 2, 3, 4}) {
    const std::vector<dist::Bucket> padded = dist::plan_buckets(numels, order, 8, ranks);
    for (const dist::Bucket& b : padded) {
      EXPECT_EQ(b.padded % ranks, 0);
      EXPECT_GE(b.padded, b.numel);
      EXPECT_LT(b.padded - b.numel, ranks);
      // The ranks' pieces cover every element of every parameter exactly once.
      std::vector<int> covered(b.numel, 0);
      for (int r = 0; r < ranks; ++r) {
        for (const dist::OwnedPiece& p : dist::owned_pieces(b, r, ranks)) {
          const dist::BucketSlot* slot = nullptr;
          for (const dist::BucketSlot& s : b.slots)
            if (s.param == p.param) slot = &s;
          ASSERT_NE(slot, nullptr);
          EXPECT_EQ(slot->offset + p.param_begin, r * (b.padded / ranks) + p.chunk_begin);
          for (int64_t e = 0; e < p.numel; ++e) covered[slot->offset + p.param_begin + e]++;
        }
      }
      EXPECT_EQ(std::count(covered.begin(), covered.end(), 1), b.numel);
    }
  }
}

}  // namespace
}  // namespace nsa
