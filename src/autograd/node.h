// The autograd graph: a Node per differentiable op application, recorded as ops run (define-by-run).
//
// A Node knows, for each of its op's inputs, the Edge to follow backwards (the input's own grad_fn, or the
// AccumulateGrad of a leaf that requires grad, or nothing). Its backward function maps the gradients of
// the op's outputs to gradients of its inputs. The function's captures are the saved tensors; release()
// drops them, which the engine does as soon as the node has run (unless retain_graph).
//
// Saved tensors are always aliases without autograd state (Tensor::alias), so a node never owns its own
// output's grad_fn and no reference cycle can form.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace nsa::autograd {

class Node;

struct Edge {
  std::shared_ptr<Node> node;  // null: the input does not require grad
  int input_nr = 0;            // which output of `node` the gradient flows into
};

// Maps the gradients of the outputs (undefined where no gradient arrived) to one gradient per input
// (undefined where an input needs none).
using BackwardFn = std::function<std::vector<Tensor>(std::span<const Tensor> grad_outputs)>;

// What a node remembers of each input to check the gradients it produces.
struct InputMeta {
  Dims shape;
  DType dtype;
  Device device;
};

class Node {
 public:
  Node(std::string name, int num_outputs, std::vector<Edge> next, std::vector<InputMeta> inputs,
       BackwardFn fn);
  virtual ~Node() = default;

  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }
  int num_outputs() const { return num_outputs_; }
  const std::vector<Edge>& next_edges() const { return next_; }
  bool needs_input_grad(size_t i) const { return i < next_.size() && next_[i].node != nullptr; }

  // Runs backward; returns one gradient per input (checked against the input's shape and dtype).
  virtual std::vector<Tensor> apply(std::span<const Tensor> grad_outputs);
  // Drops the saved tensors. Running the node again afterwards is an error.
  virtual void release() { fn_ = nullptr; }

 protected:
  std::string name_;
  uint64_t sequence_nr_;
  int num_outputs_;
  std::vector<Edge> next_;
  std::vector<InputMeta> inputs_;
  BackwardFn fn_;
};

// The sink of a leaf: adds the incoming gradient into the leaf's .grad.
class AccumulateGrad final : public Node {
 public:
  AccumulateGrad(std::shared_ptr<AutogradMeta> leaf, InputMeta meta);
  std::vector<Tensor> apply(std::span<const Tensor> grad_outputs) override;
  void release() override {}

 private:
  std::shared_ptr<AutogradMeta> leaf_;
  InputMeta meta_;
};

// True when grad mode is on and any of the tensors requires grad: the op should record a node.
bool any_requires_grad(std::initializer_list<Tensor> inputs);
bool any_requires_grad(std::span<const Tensor> inputs);

// Records a node named `name` for an op that read `inputs` and produced `outputs` (which become
// non-leaf tensors requiring grad). Does nothing unless any_requires_grad(inputs).
void record(const char* name, std::span<const Tensor> inputs, std::span<Tensor> outputs, BackwardFn fn);
void record(const char* name, std::initializer_list<Tensor> inputs, Tensor& output, BackwardFn fn);

}  // namespace nsa::autograd
