// The backward engine: runs the nodes reachable from a root in reverse topological order (a node runs once
// every node that consumed its outputs has passed it their gradients; among ready nodes the most recently
// created goes first, which frees activations in the reverse order of the forward pass). Gradients meeting
// at one output are summed; leaves accumulate into .grad. Each node's saved tensors are released as soon as
// it has run, so memory returns to the level before the forward pass.
#pragma once

#include "core/tensor.h"

namespace nsa::autograd {

// Back-propagates from `root`. `grad` defaults to ones for a one-element root (a loss).
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

}  // namespace nsa::autograd

namespace nsa {
using autograd::backward;
}
