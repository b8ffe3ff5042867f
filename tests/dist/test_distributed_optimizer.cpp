// DistributedOptimizer against one process on the full batch. A small tensor-parallel MLP
//   y = reduce_tp( relu((x ⊙ g1) W1ᵀ) W2ᵀ [+ x Eᵀ] ) + b,   loss = cross_entropy(y, targets)
// with W1 split by rows and W2 by columns over TP, g1 replicated with partial gradients, b replicated,
// and E an "expert" held by TP rank 0 and used only by the data of DP replica 0 (so the other replicas
// give it no gradient). Each DP replica reads its own micro-batches; the reference (in the same process)
// runs the unsplit model over every replica's micro-batches and plain nsa::AdamW. Gradients, the global
// norm, parameters and moments must agree, for plain DP and ZeRO-1, for every TP size the world allows.
#include <cmath>
#include <map>

#include "dist/distributed_optimizer.h"
#include "dist/grad_buckets.h"
#include "dist/sharding.h"
#include "dist/tp_ops.h"
#include "dist_test.h"
#include "optim/optim.h"

namespace nsa {
namespace {

using dist::DistParam;
using dist::DistributedOptimizer;
using test::DistTest;

constexpr int64_t kIn = 7, kHidden = 10, kClasses = 5, kRows = 2;
constexpr int kAccum = 2, kSteps = 3;
const char* const kNames[] = {"g1", "w1", "w2", "b", "e"};

OptimizerConfig test_config() {
  OptimizerConfig c;
  c.lr = 1e-2;
  c.weight_decay = 0.1;
  c.grad_clip = 0.05;  // small enough to clip: the coefficient path is exercised
  return c;
}

struct Batch {
  Tensor x, targets;
};

// Micro-batch `micro` of DP replica `replica` at `step`: the same on every TP rank of the replica.
Batch batch(int step, int replica, int micro, Device d) {
  Generator gen(1000 + 100 * step + 10 * replica + micro);
  Batch b;
  b.x = to(randn({kRows, kIn}, DType::f32, Device::cpu(), &gen), d);
  b.targets = from_vector<int64_t>(
      {(step + replica + micro) % kClasses, (2 * step + 3 * replica + micro + 1) % kClasses}, {kRows},
      DType::i64, d);
  return b;
}

// The parameters of one TP rank (the whole model when tp = 1); e undefined where the rank has no expert.
struct Params {
  std::map<std::string, Tensor> t;
  Tensor& operator[](const std::string& n) { return t.at(n); }
};

Params full_params(Device d) {
  Generator gen(11);
  Params p;
  p.t["g1"] = add_scalar(mul_scalar(randn({kIn}, DType::f32, Device::cpu(), &gen), 0.1), 1.0);
  p.t["w1"] = mul_scalar(randn({kHidden, kIn}, DType::f32, Device::cpu(), &gen), 0.4);
  p.t["w2"] = mul_scalar(randn({kClasses, kHidden}, DType::f32, Device::cpu(), &gen), 0.4);
  p.t["b"] = mul_scalar(randn({kClasses}, DType::f32, Device::cpu(), &gen), 0.1);
  p.t["e"] = mul_scalar(randn({kClasses, kIn}, DType::f32, Device::cpu(), &gen), 0.4);
  for (auto& [name, t] : p.t) t = detach(to(t, d)).set_requires_grad(true);
  return p;
}

// TP rank r's part of a full tensor (w1 rows and w2 columns of the hidden units; the rest whole).
Tensor tp_slice(const std::string& name, const Tensor& full, int r, int tp) {
  const int64_t begin = dist::shard_begin(kHidden, r, tp), size = dist::shard_size(kHidden, r, tp);
  if (name == "w1") return narrow(full, 0, begin, size);
  if (name == "w2") return narrow(full, 1, begin, size);
  return full;
}

Params shard(const Params& full, int r, int tp) {
  Params p;
  for (const auto& [name, t] : full.t) {
    if (name == "e" && r != 0) continue;  // the expert lives on TP rank 0
    p.t[name] = detach(contiguous(clone(detach(tp_slice(name, t, r, tp))))).set_requires_grad(true);
  }
  return p;
}

Tensor loss_of(Params& p, const Batch& b, bool expert_used, dist::Communicator& tp) {
  const Tensor h = relu(linear(mul(dist::copy_to_tp(b.x, tp), p["g1"]), p["w1"]));
  Tensor y = linear(h, p["w2"]);
  if (expert_used && p.t.contains("e")) y = add(y, linear(b.x, p["e"]));
  return cross_entropy(add(dist::reduce_from_tp(y, tp), p["b"]), b.targets);
}

std::vector<DistParam> dist_params(Params& p) {
  std::vector<DistParam> out;
  for (const char* n : kNames) {
    if (!p.t.contains(n)) continue;
    const std::string name = n;
    DistParam d{name, p[name]};
    d.decay = name != "g1" && name != "b";
    d.tp_partial_grad = name == "g1";
    d.tp_replicated = name == "g1" || name == "b";
    out.push_back(d);
  }
  return out;
}

// The single-process run: the whole model, every replica's data, nsa::AdamW.
struct Reference {
  Params p;
  std::unique_ptr<dist::Communicator> self = dist::make_self_communicator();
  std::unique_ptr<AdamW> adamw;
  Tensor norm;
  std::map<std::string, Tensor> grads;  // of the last backward, before the step

  Reference(Device d, const OptimizerConfig& c) : p(full_params(d)) {
    std::vector<OptimParam> ps;
    for (const char* n : kNames) ps.push_back({n, p[n], std::string(n) != "g1" && std::string(n) != "b"});
    adamw = std::make_unique<AdamW>(std::move(ps), c);
  }
  void step(int s, int dp, const OptimizerConfig& c, Device d) {
    for (int replica = 0; replica < dp; ++replica) {
      for (int k = 0; k < kAccum; ++k) {
        backward(mul_scalar(loss_of(p, batch(s, replica, k, d), replica == 0, *self), 1.0 / (dp * kAccum)));
      }
    }
    for (const char* n : kNames) grads[n] = clone(p[n].grad());
    norm = global_grad_norm(adamw->grads());
    adamw->step(c.lr, clip_coefficient(norm, c.grad_clip));
    adamw->zero_grad();
  }
};

// One replica's run (this rank's shard) under a DistributedOptimizer.
struct Replica {
  Params p;
  std::unique_ptr<DistributedOptimizer> opt;
  Tensor norm;

  Replica(const Params& full, dist::ProcessGroups& g, const OptimizerConfig& c, dist::DistOptions o)
      : p(shard(full, g.layout.tp_rank, g.layout.tp_size)) {
    opt = std::make_unique<DistributedOptimizer>(dist_params(p), c, g, o);
  }
  void backward_pass(int s, dist::ProcessGroups& g, Device d) {
    for (int k = 0; k < kAccum; ++k) {
      opt->prepare_backward(k == kAccum - 1);
      const bool expert_used = g.layout.dp_rank == 0;
      backward(mul_scalar(loss_of(p, batch(s, g.layout.dp_rank, k, d), expert_used, *g.tp), 1.0 / kAccum));
    }
    opt->finish_backward();
    norm = opt->grad_norm();
  }
  void step(const OptimizerConfig& c) {
    opt->step(c.lr, clip_coefficient(norm, c.grad_clip));
    opt->zero_grad();
  }
};

double tolerance(Device d) { return d.is_cuda() ? 1e-5 : 1e-6; }

// ‖a − b‖ / ‖b‖ over matching pieces, accumulated per parameter.
struct RelError {
  double err2 = 0, ref2 = 0;
  void add(const Tensor& a, const Tensor& ref) {
    const std::vector<double> x = to_vector<double>(a), y = to_vector<double>(ref);
    for (size_t i = 0; i < x.size(); ++i) {
      err2 += (x[i] - y[i]) * (x[i] - y[i]);
      ref2 += y[i] * y[i];
    }
  }
  double value() const { return ref2 == 0 ? std::sqrt(err2) : std::sqrt(err2 / ref2); }
};

void expect_grads_match(const DistributedOptimizer& opt, Reference& ref, const dist::Layout& l, double tol) {
  std::map<std::string, RelError> errors;
  for (const DistributedOptimizer::GradPiece& piece : opt.grad_pieces()) {
    const Tensor whole = contiguous(tp_slice(piece.name, ref.grads.at(piece.name), l.tp_rank, l.tp_size));
    const Tensor expect = narrow(reshape(whole, {whole.numel()}), 0, piece.begin, piece.grad.numel());
    errors[piece.name].add(piece.grad, expect);
  }
  for (const auto& [name, e] : errors) EXPECT_LE(e.value(), tol) << "gradient of " << name;
}

void expect_params_match(Params& p, Reference& ref, const dist::Layout& l, double tol) {
  for (auto& [name, t] : p.t) {
    EXPECT_LE(test::rel_error(t, contiguous(tp_slice(name, ref.p[name], l.tp_rank, l.tp_size))), tol)
        << "parameter " << name;
  }
}

void expect_state_matches(const std::vector<std::pair<std::string, Tensor>>& state, Reference& ref,
                          const dist::Layout& l, double tol) {
  std::map<std::string, Tensor> ref_state;
  for (const auto& [key, t] : ref.adamw->state()) ref_state[key] = t;
  for (const auto& [key, t] : state) {
    const std::string name = key.substr(key.find('/') + 1);
    const Tensor expect = contiguous(tp_slice(name, ref_state.at(key), l.tp_rank, l.tp_size));
    ASSERT_EQ(t.shape(), expect.shape()) << key;
    EXPECT_LE(test::rel_error(t, expect), tol) << key;
  }
}

std::vector<int> tp_sizes(int n) {
  std::vector<int> sizes;
  for (int tp = 1; tp <= n; ++tp)
    if (n % tp == 0) sizes.push_back(tp);
  return sizes;
}

// Plain DP and ZeRO-1 side by side against the reference, for every backend and TP size.
TEST_F(DistTest, MatchesOneProcessOnTheFullBatchWithAndWithoutZero1) {
  const OptimizerConfig c = test_config();
  for (const std::string& backend : test::test_backends()) {
    for (int tp : tp_sizes(test::test_world().size())) {
      for (double bucket_mb : {25.0, 40e-6}) {  // one bucket, or ~10 floats per bucket (several)
        SCOPED_TRACE(str(backend, ", tp ", tp, ", bucket_mb ", bucket_mb));
        dist::ProcessGroups g = dist::make_process_groups(backend, tp);
        const Device d = test::backend_device(backend);
        const double tol = tolerance(d);
        Reference ref(d, c);
        Replica plain(ref.p, g, c, {false, bucket_mb});
        Replica zero(ref.p, g, c, {true, bucket_mb});
        for (int s = 0; s < kSteps; ++s) {
          ref.step(s, g.layout.dp_size, c, d);
          if (s == 0) {
            EXPECT_LT(item(clip_coefficient(ref.norm, c.grad_clip)), 1.0) << "no clipping happened";
          }
          for (Replica* r : {&plain, &zero}) {
            r->backward_pass(s, g, d);
            expect_grads_match(*r->opt, ref, g.layout, tol);
            EXPECT_NEAR(item(r->norm), item(ref.norm), tol * item(ref.norm))
                << (r == &zero ? "zero1" : "plain");
            r->step(c);
            expect_params_match(r->p, ref, g.layout, tol);
            EXPECT_EQ(r->opt->step_count(), s + 1);
          }
        }
        for (auto& [name, t] : plain.p.t) EXPECT_LE(test::rel_error(zero.p[name], t), tol) << name;
        expect_state_matches(plain.opt->state(), ref, g.layout, tol);
        expect_state_matches(zero.opt->state(), ref, g.layout, tol);
      }
    }
  }
}

// state() / load_state(): a ZeRO-1 optimizer restored from another's state continues identically, and
// a plain one restored from a ZeRO-1 state too (the state is whole parameters either way).
TEST_F(DistTest, StateRoundTripContinuesTheSameRun) {
  const OptimizerConfig c = test_config();
  const int world = test::test_world().size();
  for (const std::string& backend : test::test_backends()) {
    const int tp = world % 2 == 0 && world > 2 ? 2 : 1;
    dist::ProcessGroups g = dist::make_process_groups(backend, tp);
    const Device d = test::backend_device(backend);
    Reference ref(d, c);
    Replica a(ref.p, g, c, {true, 40e-6});
    for (int s = 0; s < 2; ++s) {
      a.backward_pass(s, g, d);
      a.step(c);
    }
    const auto saved = a.opt->state();
    std::vector<std::pair<std::string, Tensor>> copy;
    for (const auto& [key, t] : saved)
      copy.emplace_back(key, to(clone(t), Device::cpu()));  // as a checkpoint would

    Params same_values = a.p;  // the restored runs start from a's parameters
    Replica b(ref.p, g, c, {true, 40e-6}), p(ref.p, g, c, {false, 40e-6});
    for (Replica* r : {&b, &p}) {
      {
        NoGradGuard no_grad;
        for (auto& [name, t] : r->p.t) copy_(t, same_values[name]);
      }
      r->opt->load_state(copy, a.opt->step_count(), "ckpt.h5");
      EXPECT_EQ(r->opt->step_count(), 2);
      const auto restored = r->opt->state();
      ASSERT_EQ(restored.size(), saved.size());
      for (size_t i = 0; i < saved.size(); ++i) {
        EXPECT_EQ(restored[i].first, saved[i].first);
        EXPECT_TRUE(test::equal_values(restored[i].second, saved[i].second)) << saved[i].first;
      }
    }
    for (Replica* r : {&a, &b, &p}) {
      r->backward_pass(2, g, d);
      r->step(c);
    }
    for (auto& [name, t] : a.p.t) {
      EXPECT_TRUE(test::equal_values(b.p[name], t)) << "zero1 restored: " << name;
      EXPECT_LE(test::rel_error(p.p[name], t), tolerance(d)) << "plain restored: " << name;
    }

    // A bad state is one line naming the entry, and changes nothing.
    std::vector<std::pair<std::string, Tensor>> missing(copy.begin() + 1, copy.end());
    try {
      b.opt->load_state(missing, 5, "ckpt.h5");
      ADD_FAILURE() << "a state without " << copy.front().first << " was accepted";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()), "ckpt.h5: missing entry '" + copy.front().first + "'");
    }
    auto wrong = copy;
    wrong[0].second = zeros({3});
    EXPECT_THROW(b.opt->load_state(wrong, 5, "ckpt.h5"), InputError);
    auto extra = copy;
    extra.emplace_back("exp_avg/nope", zeros({1}));
    EXPECT_THROW(b.opt->load_state(extra, 5, "ckpt.h5"), InputError);
    EXPECT_EQ(b.opt->step_count(), 3);
  }
}

// With one process the DistributedOptimizer is nsa::AdamW: bit for bit.
TEST_F(DistTest, OneProcessIsExactlyAdamW) {
  const OptimizerConfig c = test_config();
  dist::ProcessGroups g = dist::make_single_process_groups();
  Reference ref(Device::cpu(), c);
  Replica r(ref.p, g, c, {true, 40e-6});
  for (int s = 0; s < kSteps; ++s) {
    ref.step(s, 1, c, Device::cpu());
    r.backward_pass(s, g, Device::cpu());
    EXPECT_EQ(item(r.norm), item(ref.norm));
    r.step(c);
    for (auto& [name, t] : r.p.t) EXPECT_TRUE(test::equal_values(t, ref.p[name])) << name;
  }
}

TEST_F(DistTest, RejectsATensorListedTwice) {
  dist::ProcessGroups g = dist::make_process_groups("mpi", 1);
  Params p = shard(full_params(Device::cpu()), 0, 1);
  std::vector<DistParam> params = dist_params(p);
  params.push_back({"tied", p["w1"]});
  try {
    DistributedOptimizer opt(params, test_config(), g);
    ADD_FAILURE() << "a tensor listed twice was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is listed twice"), std::string::npos) << e.what();
  }
}

// A communicator that records the collectives passed to it, and whether they ran inside backward.
class Recorder final : public dist::Communicator {
 public:
  Recorder(std::unique_ptr<dist::Communicator> inner, const bool* in_backward)
      : inner_(std::move(inner)), in_backward_(in_backward) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string backend() const override { return inner_->backend(); }
  void all_reduce(const Tensor& t, dist::ReduceOp op) override {
    note(t.numel());
    inner_->all_reduce(t, op);
  }
  void all_gather(const Tensor& in, const Tensor& out) override { inner_->all_gather(in, out); }
  void reduce_scatter(const Tensor& in, const Tensor& out) override {
    note(in.numel());
    inner_->reduce_scatter(in, out);
  }
  void broadcast(const Tensor& t, int root) override { inner_->broadcast(t, root); }
  void barrier() override { inner_->barrier(); }

  std::vector<int64_t> sizes;
  int during_backward = 0;

 private:
  void note(int64_t n) {
    sizes.push_back(n);
    if (*in_backward_) ++during_backward;
  }
  std::unique_ptr<dist::Communicator> inner_;
  const bool* in_backward_;
};

// Buckets are reduced in index order, the first ones while backward still runs (hooks armed for the last
// micro-batch only), and nothing is reduced during earlier micro-batches.
TEST_F(DistTest, BucketsLaunchInOrderDuringTheLastBackward) {
  const OptimizerConfig c = test_config();
  const int world = test::test_world().size();
  if (world == 1) GTEST_SKIP() << "one process: no data parallelism";
  bool in_backward = false;
  dist::ProcessGroups g = dist::make_process_groups("mpi", 1);
  auto recorder = std::make_unique<Recorder>(std::move(g.dp), &in_backward);
  Recorder& rec = *recorder;
  g.dp = std::move(recorder);
  Params p = shard(full_params(Device::cpu()), 0, 1);
  p.t.erase("e");  // every parameter gets a gradient on every rank
  const double bucket_mb = 40e-6;
  DistributedOptimizer opt(dist_params(p), c, g, {false, bucket_mb});
  rec.sizes.clear();  // the constructor's check that the ranks agree on the buckets

  std::vector<int64_t> numels;
  std::vector<int> order;
  for (const char* n : kNames)
    if (p.t.contains(n)) numels.push_back(p[n].numel());
  for (int i = static_cast<int>(numels.size()) - 1; i >= 0; --i) order.push_back(i);
  std::vector<int64_t> expect;
  for (const dist::Bucket& b :
       dist::plan_buckets(numels, order, static_cast<int64_t>(bucket_mb * 1024 * 1024 / 4), 1))
    expect.push_back(b.padded);
  ASSERT_GE(expect.size(), 3u);

  for (int k = 0; k < kAccum; ++k) {
    opt.prepare_backward(k == kAccum - 1);
    const Tensor loss = loss_of(p, batch(0, g.layout.dp_rank, k, Device::cpu()), false, *g.tp);
    in_backward = true;
    backward(loss);
    in_backward = false;
    if (k == 0) {
      EXPECT_TRUE(rec.sizes.empty()) << "a reduction during an earlier micro-batch";
    }
  }
  opt.finish_backward();
  EXPECT_EQ(rec.sizes, expect);
  EXPECT_GE(rec.during_backward, 1) << "no bucket was reduced while backward ran";
  EXPECT_EQ(world, g.layout.dp_size);
}

}  // namespace
}  // namespace nsa
