#include "autograd/node.h"

#include <atomic>
#include <limits>

#include "autograd/grad_mode.h"
#include "ops/copy.h"
#include "ops/elementwise.h"

namespace nsa::autograd {
namespace {

std::atomic<uint64_t> g_next_sequence_nr{0};

InputMeta meta_of(const Tensor& t) { return {t.shape(), t.dtype(), t.device()}; }

// The edge a gradient for `t` must follow: its producer, or its leaf accumulator, or none.
Edge edge_for(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  const std::shared_ptr<AutogradMeta>& meta = t.impl_ptr()->autograd;
  std::shared_ptr<Node> acc = meta->accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(meta, meta_of(t));
    meta->accumulator = acc;
  }
  return {acc, 0};
}

}  // namespace

Node::Node(std::string name, int num_outputs, std::vector<Edge> next, std::vector<InputMeta> inputs,
           BackwardFn fn)
    : name_(std::move(name)),
      sequence_nr_(g_next_sequence_nr++),
      num_outputs_(num_outputs),
      next_(std::move(next)),
      inputs_(std::move(inputs)),
      fn_(std::move(fn)) {}

std::vector<Tensor> Node::apply(std::span<const Tensor> grad_outputs) {
  NSA_CHECK(fn_ != nullptr, "[autograd] backward through ", name_,
            " a second time: its saved tensors were released (pass retain_graph=true the first time)");
  std::vector<Tensor> grads = fn_(grad_outputs);
  NSA_CHECK(grads.size() == inputs_.size(), "[autograd] ", name_, " backward returned ", grads.size(),
            " gradients for ", inputs_.size(), " inputs");
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined() || !needs_input_grad(i)) continue;
    const InputMeta& m = inputs_[i];
    NSA_CHECK(grads[i].shape() == m.shape && grads[i].dtype() == m.dtype && grads[i].device() == m.device,
              "[autograd] ", name_, " backward returned ", grads[i].desc(), " for input ", i, " of type ",
              dtype_name(m.dtype), m.shape.str(), " ", m.device.str());
  }
  return grads;
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<AutogradMeta> leaf, InputMeta meta)
    : Node("accumulate_grad", 1, {}, {}, nullptr), leaf_(std::move(leaf)), meta_(std::move(meta)) {
  sequence_nr_ = std::numeric_limits<uint64_t>::max();  // run as soon as ready: grads final early
}

std::vector<Tensor> AccumulateGrad::apply(std::span<const Tensor> grad_outputs) {
  const Tensor& g = grad_outputs[0];
  if (!g.defined()) return {};
  NSA_CHECK(g.shape() == meta_.shape && g.dtype() == meta_.dtype && g.device() == meta_.device,
            "[autograd] gradient ", g.desc(), " does not match its leaf ", dtype_name(meta_.dtype),
            meta_.shape.str(), " ", meta_.device.str());
  if (!leaf_->grad) {
    // Take the incoming buffer when nothing else can see it; otherwise keep a private copy, since later
    // accumulations write into .grad in place.
    const bool exclusive = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous();
    leaf_->grad = exclusive ? g.impl_ptr() : clone(g).impl_ptr();
  } else {
    Tensor acc(leaf_->grad);
    add_(acc, g);
  }
  if (leaf_->post_accumulate_hook) leaf_->post_accumulate_hook();
  return {};
}

bool any_requires_grad(std::span<const Tensor> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool any_requires_grad(std::initializer_list<Tensor> inputs) {
  return any_requires_grad(std::span<const Tensor>(inputs.begin(), inputs.size()));
}

void record(const char* name, std::span<const Tensor> inputs, std::span<Tensor> outputs, BackwardFn fn) {
  if (!any_requires_grad(inputs)) return;
  std::vector<Edge> next;
  std::vector<InputMeta> metas;
  next.reserve(inputs.size());
  metas.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    next.push_back(edge_for(t));
    metas.push_back(t.defined() ? meta_of(t) : InputMeta{});
  }
  auto node = std::make_shared<Node>(name, static_cast<int>(outputs.size()), std::move(next),
                                     std::move(metas), std::move(fn));
  for (size_t i = 0; i < outputs.size(); ++i) {
    AutogradMeta& m = outputs[i].autograd_meta();
    m.requires_grad = true;
    m.grad_fn = node;
    m.output_nr = static_cast<int>(i);
  }
}

void record(const char* name, std::initializer_list<Tensor> inputs, Tensor& output, BackwardFn fn) {
  record(name, std::span<const Tensor>(inputs.begin(), inputs.size()), std::span<Tensor>(&output, 1),
         std::move(fn));
}

}  // namespace nsa::autograd
