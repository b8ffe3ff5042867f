// DistributedOptimizer: gradient buckets, their reduction (overlapped with backward on CUDA), ZeRO-1
// sharding of the AdamW state, and the distributed gradient norm. docs/distributed.md tells the story.
//
// Which parameters go through buckets:
//   main buckets     (dp > 1) every parameter except the TP partial-gradient ones; launched from the
//                    post-accumulate hooks as their gradients become final, strictly in bucket order (on
//                    CUDA, or on the CPU without TP; otherwise all in finish_backward, see
//                    launch_in_backward).
//   partial buckets  (tp > 1, or dp > 1) the tp_partial_grad parameters; launched in finish_backward, each
//                    all-reduced over TP and then reduced over DP like a main bucket. (Their bucket layout
//                    must match across TP ranks, and the set of these replicated parameters is the same on
//                    every TP rank, unlike the rest.)
//   neither          (dp = tp = 1) no bucket: plain nsa::AdamW on the parameters' own gradients.
//
// After finish_backward, plain DP points each bucketed parameter's .grad at its slice of the reduced
// buffer (no copy back); ZeRO-1 drops the local .grad and keeps only views of the owned pieces of the
// reduce-scattered chunk (grad_pieces). On CUDA the buffers are written and reduced on a communication
// stream: the compute stream records an event when a bucket is ready, the communication stream waits on
// it, and finish_backward makes the compute stream wait for the communication stream's last event.
#include "dist/distributed_optimizer.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/cuda_api.h"
#include "dist/grad_buckets.h"
#include "ops/ops.h"
#include "optim/optim.h"

namespace nsa::dist {
namespace {

// The parameter as a flat 1-D view without autograd history (updated in place by AdamW, copied into).
Tensor flat(const Tensor& t) { return reshape(t.alias(), {t.numel()}); }

}  // namespace

struct DistributedOptimizer::Impl {
  std::vector<DistParam> params;
  ProcessGroups* groups = nullptr;
  Device device = Device::cpu();
  int dp = 1, dp_rank = 0, tp = 1, tp_rank = 0;
  bool zero1 = false;  // dp > 1 and asked for
  // Whether hooks may launch buckets during backward. Not for blocking (CPU) collectives with TP: a rank
  // blocked in a DP reduction inside backward could wait on a peer blocked in a TP collective of the model
  // (a cycle once MoE makes the ranks' bucket timing differ); there the buckets wait for finish_backward.
  bool launch_in_backward = true;

  std::vector<Bucket> buckets;  // launch order: main buckets, then partial buckets
  size_t first_partial = 0;     // index of the first partial bucket
  std::vector<Tensor> buffers;  // per bucket: f32 [padded] on `device`
  std::vector<int> bucket_of;   // per parameter: its bucket, -1 for none

  // State of the current backward pass.
  bool armed = false;            // hooks launch buckets (last micro-batch)
  std::vector<char> hooked;      // per parameter: its hook fired in the armed pass
  std::vector<int64_t> pending;  // per bucket: parameters whose gradient is not final yet
  size_t next_launch = 0;        // the next bucket to launch (strict order)
  bool reduced = false;          // finish_backward ran and step has not yet

  // ZeRO-1: the owned pieces (the AdamW parameters, in order) and their gradient views.
  struct Piece {
    int bucket;
    OwnedPiece owned;
  };
  std::vector<Piece> pieces;
  std::vector<Tensor> piece_grads;

  std::unique_ptr<AdamW> adamw;

  // CUDA: the communication stream and the events that order it against the compute stream.
  cuda::Stream comm_stream = nullptr;
  std::vector<cuda::Event> ready_events;  // per bucket, recorded on the compute stream at launch
  cuda::Event done_event = nullptr;       // recorded on the communication stream by finish_backward

  bool cuda() const { return device.is_cuda() && !buckets.empty(); }
  bool counts_in_norm(int i) const {  // replicated over TP: one rank counts it
    return tp_rank == 0 || !(params[i].tp_replicated || params[i].tp_partial_grad);
  }
  int64_t chunk(size_t b) const { return buckets[b].padded / dp; }

  void on_grad_final(int i);
  void launch(size_t b);
  void check_same_layout(Communicator& comm, const std::vector<int64_t>& values, const char* what);
};

void DistributedOptimizer::Impl::check_same_layout(Communicator& comm, const std::vector<int64_t>& values,
                                                   const char* what) {
  // max over ranks of (x, −x) gives (max, −min): every rank agrees when they equal (x, −x).
  std::vector<int64_t> both = values;
  for (int64_t v : values) both.push_back(-v);
  const Tensor t = from_vector<int64_t>(both, {static_cast<int64_t>(both.size())}, DType::i64, device);
  comm.all_reduce(t, ReduceOp::max);
  const std::vector<int64_t> r = to_vector<int64_t>(t);
  if (r != both) {
    NSA_FAIL("[distributed optimizer] the ", what,
             " ranks disagree on the gradient buckets (parameter count, ",
             "sizes or bucket_mb differ): this rank has ", values[0], " parameters / ", values[1],
             " elements, another ", r[0] != values[0] ? r[0] : -r[values.size()], " / ",
             r[1] != values[1] ? r[1] : -r[values.size() + 1]);
  }
}

void DistributedOptimizer::Impl::on_grad_final(int i) {
  if (!armed) return;
  const int b = bucket_of[i];
  NSA_CHECK(!hooked[i], "[distributed optimizer] the gradient of '", params[i].name,
            "' was accumulated twice after prepare_backward(true) (one backward per micro-batch)");
  NSA_CHECK(static_cast<size_t>(b) >= next_launch, "[distributed optimizer] the gradient of '",
            params[i].name, "' arrived after its bucket was reduced");
  hooked[i] = 1;
  --pending[b];
  while (next_launch < first_partial && pending[next_launch] == 0) launch(next_launch++);
}

void DistributedOptimizer::Impl::launch(size_t b) {
  const Bucket& bucket = buckets[b];
  const Tensor& buffer = buffers[b];
  std::optional<cuda::StreamGuard> on_comm;
  if (cuda()) {
    cuda::record_event(ready_events[b], cuda::current_stream());
    cuda::stream_wait_event(comm_stream, ready_events[b]);
    on_comm.emplace(comm_stream);
  }
  for (const BucketSlot& s : bucket.slots) {
    const Tensor& p = params[s.param].param;
    const Tensor view = reshape(narrow(buffer, 0, s.offset, s.numel), p.shape());
    const Tensor g = p.grad();
    if (!g.defined()) {
      fill_(view, 0.0);  // no gradient reached it on this rank (e.g. an expert no token chose)
      continue;
    }
    copy_(view, g);
    // The gradient was made on the compute stream: its memory must not be reused before this copy ran.
    if (cuda() && g.nbytes() > 0) cuda::record_stream(g.storage()->data(), comm_stream);
  }
  const bool partial = b >= first_partial;
  if (partial && tp > 1) groups->tp->all_reduce(buffer);
  if (dp > 1) {
    if (zero1) {
      const Tensor mine = narrow(buffer, 0, dp_rank * chunk(b), chunk(b));
      groups->dp->reduce_scatter(buffer, mine);
      mul_scalar_(mine, 1.0 / dp);
    } else {
      groups->dp->all_reduce(buffer);
      mul_scalar_(buffer, 1.0 / dp);
    }
  }
}

DistributedOptimizer::DistributedOptimizer(std::vector<DistParam> params, const OptimizerConfig& config,
                                           ProcessGroups& groups, DistOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.params = std::move(params);
  m.groups = &groups;
  NSA_CHECK(groups.dp && groups.tp, "[distributed optimizer] process groups without DP/TP communicators");
  m.dp = groups.dp->size();
  m.dp_rank = groups.dp->rank();
  m.tp = groups.tp->size();
  m.tp_rank = groups.tp->rank();
  m.zero1 = options.zero1 && m.dp > 1;
  if (!m.params.empty()) m.device = m.params.front().param.device();
  m.launch_in_backward = m.device.is_cuda() || m.tp == 1;
  if (!(options.bucket_mb > 0))
    throw InputError(str("parallel: bucket size: expected a positive number of MB, got ", options.bucket_mb));

  const int n = static_cast<int>(m.params.size());
  std::vector<int64_t> numels(n);
  std::vector<int> main_order, partial_order;    // reverse registration order: roughly when backward ends
  std::unordered_set<const AutogradMeta*> seen;  // a tied tensor listed twice would get two bucket slots
  for (int i = n - 1; i >= 0; --i) {
    const DistParam& p = m.params[i];
    NSA_CHECK(p.param.defined() && p.param.requires_grad() && p.param.is_leaf(),
              "[distributed optimizer] parameter '", p.name, "' is not a leaf that requires grad");
    NSA_CHECK(seen.insert(p.param.impl_ptr()->autograd.get()).second, "[distributed optimizer] parameter '",
              p.name, "' is listed twice (list a tied parameter once)");
    numels[i] = p.param.numel();
    (m.tp > 1 && p.tp_partial_grad ? partial_order : main_order).push_back(i);
  }
  const auto target = std::max<int64_t>(1, static_cast<int64_t>(options.bucket_mb * 1024 * 1024 / 4));
  const int pad = m.zero1 ? m.dp : 1;
  if (m.dp > 1) m.buckets = plan_buckets(numels, main_order, target, pad);
  m.first_partial = m.buckets.size();
  if (m.dp > 1 || m.tp > 1) {
    for (Bucket& b : plan_buckets(numels, partial_order, target, pad)) m.buckets.push_back(std::move(b));
  }

  // Every rank of a group must issue the same collectives with the same sizes: check the layouts once
  // (parameter count, elements, bucket count and a position-weighted sum of the bucket sizes).
  auto signature = [&](size_t from, size_t to) {
    std::vector<int64_t> sig{0, 0, static_cast<int64_t>(to - from), 0};
    for (size_t b = from; b < to; ++b) {
      sig[0] += static_cast<int64_t>(m.buckets[b].slots.size());
      sig[1] += m.buckets[b].padded;
      sig[3] += m.buckets[b].padded * static_cast<int64_t>(b - from + 1);
    }
    return sig;
  };
  if (m.dp > 1) m.check_same_layout(*groups.dp, signature(0, m.buckets.size()), "data-parallel");
  if (m.tp > 1)
    m.check_same_layout(*groups.tp, signature(m.first_partial, m.buckets.size()), "tensor-parallel");

  m.bucket_of.assign(n, -1);
  for (size_t b = 0; b < m.buckets.size(); ++b) {
    m.buffers.push_back(zeros({m.buckets[b].padded}, DType::f32, m.device));
    for (const BucketSlot& s : m.buckets[b].slots) m.bucket_of[s.param] = static_cast<int>(b);
  }
  m.hooked.assign(n, 0);
  m.pending.assign(m.buckets.size(), 0);

  std::vector<OptimParam> adam_params;
  if (m.zero1) {
    for (size_t b = 0; b < m.buckets.size(); ++b) {
      for (const OwnedPiece& o : owned_pieces(m.buckets[b], m.dp_rank, m.dp)) {
        const DistParam& p = m.params[o.param];
        m.pieces.push_back({static_cast<int>(b), o});
        adam_params.push_back({p.name, narrow(flat(p.param), 0, o.param_begin, o.numel), p.decay});
      }
    }
  } else {
    for (const DistParam& p : m.params) adam_params.push_back({p.name, p.param, p.decay});
  }
  m.adamw = std::make_unique<AdamW>(std::move(adam_params), config);

  if (m.cuda()) {
    m.comm_stream = cuda::create_stream();
    for (size_t b = 0; b < m.buckets.size(); ++b) m.ready_events.push_back(cuda::create_event());
    m.done_event = cuda::create_event();
  }
  for (int i = 0; i < n; ++i) {
    if (m.bucket_of[i] < 0 || static_cast<size_t>(m.bucket_of[i]) >= m.first_partial) continue;
    Impl* impl = impl_.get();
    m.params[i].param.autograd_meta().post_accumulate_hook = [impl, i] { impl->on_grad_final(i); };
  }
}

DistributedOptimizer::~DistributedOptimizer() {
  Impl& m = *impl_;
  for (DistParam& p : m.params) {
    if (p.param.defined() && p.param.impl_ptr()->autograd)
      p.param.autograd_meta().post_accumulate_hook = nullptr;
  }
  if (m.comm_stream != nullptr) {
    try {
      cuda::synchronize_stream(m.comm_stream);
      for (cuda::Event e : m.ready_events) cuda::destroy_event(e);
      cuda::destroy_event(m.done_event);
      cuda::destroy_stream(m.comm_stream);
    } catch (const Error&) {
      // A broken device at shutdown: nothing left to order.
    }
  }
}

void DistributedOptimizer::prepare_backward(bool last) {
  Impl& m = *impl_;
  m.armed = last && m.first_partial > 0 && m.launch_in_backward;
  if (!m.armed) return;
  NSA_CHECK(m.next_launch == 0,
            "[distributed optimizer] prepare_backward(true) twice without finish_backward()");
  std::fill(m.hooked.begin(), m.hooked.end(), 0);
  for (size_t b = 0; b < m.buckets.size(); ++b)
    m.pending[b] = static_cast<int64_t>(m.buckets[b].slots.size());
}

void DistributedOptimizer::finish_backward() {
  Impl& m = *impl_;
  m.armed = false;
  m.reduced = true;
  if (m.buckets.empty()) return;
  // What the hooks did not launch: buckets with a parameter that got no gradient in the last pass (or all
  // of them, when prepare_backward(true) was not called), then the partial buckets.
  while (m.next_launch < m.buckets.size()) m.launch(m.next_launch++);
  m.next_launch = 0;
  if (m.cuda()) {
    cuda::record_event(m.done_event, m.comm_stream);
    cuda::stream_wait_event(cuda::current_stream(), m.done_event);
  }
  if (m.zero1) {
    m.piece_grads.clear();
    for (const Impl::Piece& piece : m.pieces) {
      const Tensor mine =
          narrow(m.buffers[piece.bucket], 0, m.dp_rank * m.chunk(piece.bucket), m.chunk(piece.bucket));
      m.piece_grads.push_back(narrow(mine, 0, piece.owned.chunk_begin, piece.owned.numel));
    }
    for (DistParam& p : m.params) p.param.set_grad(Tensor());  // only the owned pieces are reduced
    return;
  }
  for (size_t b = 0; b < m.buckets.size(); ++b) {
    for (const BucketSlot& s : m.buckets[b].slots) {
      Tensor& p = m.params[s.param].param;
      p.set_grad(reshape(narrow(m.buffers[b], 0, s.offset, s.numel), p.shape()));
    }
  }
}

Tensor DistributedOptimizer::grad_norm() {
  Impl& m = *impl_;
  if (m.dp == 1 && m.tp == 1) return global_grad_norm(m.adamw->grads());
  NSA_CHECK(m.reduced, "[distributed optimizer] grad_norm() before finish_backward()");
  std::vector<Tensor> grads;
  if (m.zero1) {
    for (size_t k = 0; k < m.pieces.size(); ++k) {
      if (m.counts_in_norm(m.pieces[k].owned.param)) grads.push_back(m.piece_grads[k]);
    }
  } else {
    for (int i = 0; i < static_cast<int>(m.params.size()); ++i) {
      if (m.counts_in_norm(i)) grads.push_back(m.params[i].param.grad());
    }
  }
  bool any = false;
  for (const Tensor& g : grads) any = any || g.defined();
  Tensor squared = any ? grad_norm_squared(grads) : zeros({}, DType::f32, m.device);
  if (m.tp > 1) m.groups->tp->all_reduce(squared);
  if (m.zero1) m.groups->dp->all_reduce(squared);
  return sqrt(squared);
}

void DistributedOptimizer::step(double lr, const Tensor& grad_scale) {
  Impl& m = *impl_;
  if (!m.zero1) {
    NSA_CHECK(m.reduced || m.buckets.empty(), "[distributed optimizer] step() before finish_backward()");
    m.adamw->step(lr, grad_scale);
    m.reduced = false;
    return;
  }
  NSA_CHECK(m.reduced, "[distributed optimizer] step() before finish_backward()");
  m.adamw->step(lr, grad_scale, m.piece_grads);
  m.reduced = false;
  // Every rank updated its chunk of each bucket: gather the chunks (in the gradient buffers, whose reduced
  // chunks have been used) and copy the whole parameters back.
  for (size_t b = 0; b < m.buckets.size(); ++b) {
    const Tensor mine = narrow(m.buffers[b], 0, m.dp_rank * m.chunk(b), m.chunk(b));
    for (size_t k = 0; k < m.pieces.size(); ++k) {
      const Impl::Piece& piece = m.pieces[k];
      if (piece.bucket != static_cast<int>(b)) continue;
      copy_(narrow(mine, 0, piece.owned.chunk_begin, piece.owned.numel),
            narrow(flat(m.params[piece.owned.param].param), 0, piece.owned.param_begin, piece.owned.numel));
    }
    m.groups->dp->all_gather(mine, m.buffers[b]);
    for (const BucketSlot& s : m.buckets[b].slots) {
      copy_(flat(m.params[s.param].param), narrow(m.buffers[b], 0, s.offset, s.numel));
    }
  }
  m.piece_grads.clear();  // the buffers now hold parameters
}

void DistributedOptimizer::zero_grad() {
  for (DistParam& p : impl_->params) {
    if (p.param.grad().defined()) p.param.set_grad(Tensor());
  }
}

int64_t DistributedOptimizer::step_count() const { return impl_->adamw->step_count(); }

std::vector<DistributedOptimizer::GradPiece> DistributedOptimizer::grad_pieces() const {
  const Impl& m = *impl_;
  std::vector<GradPiece> out;
  if (m.zero1) {
    for (size_t k = 0; k < m.piece_grads.size(); ++k) {
      const Impl::Piece& piece = m.pieces[k];
      out.push_back({m.params[piece.owned.param].name, piece.owned.param_begin, m.piece_grads[k]});
    }
    return out;
  }
  for (const DistParam& p : m.params) {
    if (const Tensor g = p.param.grad(); g.defined()) out.push_back({p.name, 0, flat(g)});
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> DistributedOptimizer::state() {
  Impl& m = *impl_;
  if (!m.zero1) return m.adamw->state();
  // Each bucket's moment chunks, laid out like the gradient chunks, gathered into whole buckets.
  const std::vector<std::pair<std::string, Tensor>> pieces = m.adamw->state();  // m, v per piece
  std::vector<Tensor> exp_avg(m.params.size()), exp_avg_sq(m.params.size());
  for (size_t b = 0; b < m.buckets.size(); ++b) {
    for (int which = 0; which < 2; ++which) {
      const Tensor full = zeros({m.buckets[b].padded}, DType::f32, m.device);
      const Tensor mine = narrow(full, 0, m.dp_rank * m.chunk(b), m.chunk(b));
      for (size_t k = 0; k < m.pieces.size(); ++k) {
        if (m.pieces[k].bucket != static_cast<int>(b)) continue;
        copy_(narrow(mine, 0, m.pieces[k].owned.chunk_begin, m.pieces[k].owned.numel),
              pieces[2 * k + which].second);
      }
      m.groups->dp->all_gather(mine, full);
      for (const BucketSlot& s : m.buckets[b].slots) {
        const Tensor t = reshape(narrow(full, 0, s.offset, s.numel), m.params[s.param].param.shape());
        (which == 0 ? exp_avg : exp_avg_sq)[s.param] = t;
      }
    }
  }
  std::vector<std::pair<std::string, Tensor>> entries;
  for (size_t i = 0; i < m.params.size(); ++i) {
    entries.emplace_back("exp_avg/" + m.params[i].name, exp_avg[i]);
    entries.emplace_back("exp_avg_sq/" + m.params[i].name, exp_avg_sq[i]);
  }
  return entries;
}

void DistributedOptimizer::load_state(const std::vector<std::pair<std::string, Tensor>>& state,
                                      int64_t step_count, const std::string& source) {
  Impl& m = *impl_;
  if (!m.zero1) {
    m.adamw->load_state(state, step_count, source);
    return;
  }
  // The same checks as AdamW::load_state against the whole parameters, then each owned piece's slice.
  std::unordered_map<std::string, Tensor> by_name;
  for (const auto& [name, tensor] : state) {
    if (!by_name.emplace(name, tensor).second)
      throw InputError(str(source, ": entry '", name, "' appears twice"));
  }
  std::unordered_set<std::string> expected;
  for (const DistParam& p : m.params) {
    for (const char* kind : {"exp_avg/", "exp_avg_sq/"}) {
      const std::string key = kind + p.name;
      expected.insert(key);
      const auto it = by_name.find(key);
      if (it == by_name.end()) throw InputError(str(source, ": missing entry '", key, "'"));
      const Tensor& t = it->second;
      if (!t.defined() || !is_floating(t.dtype()) || t.shape() != p.param.shape()) {
        throw InputError(str(source, ": entry '", key, "' is ", t.defined() ? t.desc() : "undefined",
                             ", expected f32", p.param.shape().str()));
      }
    }
  }
  for (const auto& entry : state) {
    if (!expected.contains(entry.first)) {
      throw InputError(
          str(source, ": unexpected entry '", entry.first, "' (no parameter of that name in the optimizer)"));
    }
  }
  std::vector<std::pair<std::string, Tensor>> pieces;
  for (const Impl::Piece& piece : m.pieces) {
    const std::string& name = m.params[piece.owned.param].name;
    for (const char* kind : {"exp_avg/", "exp_avg_sq/"}) {
      const Tensor src = contiguous(by_name.at(kind + name));
      const Tensor whole = reshape(src, {src.numel()});
      pieces.emplace_back(kind + name, narrow(whole, 0, piece.owned.param_begin, piece.owned.numel));
    }
  }
  m.adamw->load_state(pieces, step_count, source);
}

}  // namespace nsa::dist
