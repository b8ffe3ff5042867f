#include "autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/elementwise.h"
#include "ops/factory.h"

namespace nsa::autograd {
namespace {

struct LaterFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

}  // namespace

void backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  NSA_CHECK(
      root.defined() && root.requires_grad(),
      "[backward] the tensor does not require grad (no parameter that requires grad was used to make it)");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    NSA_CHECK(root.numel() == 1, "[backward] a gradient is needed for a non-scalar root ", root.desc());
    grad = ones_like(root);
  }
  NSA_CHECK(grad.shape() == root.shape() && grad.dtype() == root.dtype() && grad.device() == root.device(),
            "[backward] gradient ", grad.desc(), " does not match the root ", root.desc());

  NoGradGuard no_grad;
  Edge start;
  if (root.grad_fn()) {
    start = {root.grad_fn(), root.output_nr()};
  } else {  // the root is itself a leaf: its gradient is `grad`
    AccumulateGrad acc(root.impl_ptr()->autograd, {root.shape(), root.dtype(), root.device()});
    const Tensor g[1] = {grad};
    acc.apply(g);
    return;
  }

  // Count, for every reachable node, how many edges lead into it.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{start.node.get()};
  std::unordered_set<Node*> seen{start.node.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.node) continue;
      pending[e.node.get()]++;
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  buffers[start.node.get()].resize(start.node->num_outputs());
  buffers[start.node.get()][start.input_nr] = grad;
  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  ready.push(start.node.get());

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    std::vector<Tensor> grads = std::move(buffers[node]);
    buffers.erase(node);
    grads.resize(node->num_outputs());

    bool any = false;
    for (const Tensor& g : grads) any = any || g.defined();
    std::vector<Tensor> input_grads;
    if (any) input_grads = node->apply(grads);
    grads.clear();  // drop our references before the node's inputs are visited
    if (!retain_graph) node->release();

    const auto& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      Node* next = edges[i].node.get();
      if (!next) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        std::vector<Tensor>& buf = buffers[next];
        buf.resize(next->num_outputs());
        Tensor& slot = buf[edges[i].input_nr];
        slot = slot.defined() ? add(slot, input_grads[i]) : std::move(input_grads[i]);
      }
      if (--pending[next] == 0) ready.push(next);
    }
  }
}

}  // namespace nsa::autograd
