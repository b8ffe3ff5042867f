// Module: a named bag of parameters and child modules. A parameter's dotted name ("blocks.3.attn.wq.weight")
// is its identity everywhere: optimizer state, checkpoints, exports, tensor-parallel sharding tables.
//
// Parameters are f32 leaf tensors (the master weights). The forward casts them to the compute dtype
// (bf16 on the GPU) with the differentiable `to`, so gradients arrive in f32 on the master copy.
// Modules are neither copyable nor movable: a parent keeps pointers to its children, which are members.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace nsa::nn {

// What a parameter is, for rules that depend on it (weight decay, init).
enum class ParamKind { weight, norm, embedding, bias };

struct NamedParam {
  std::string name;
  Tensor tensor;
  ParamKind kind;
};

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Every parameter of this module and its children, depth first in registration order, with dotted names.
  std::vector<NamedParam> named_parameters(const std::string& prefix = "") const;
  int64_t num_parameters() const;

 protected:
  // Registers `value` (made a leaf that requires grad) and returns the handle (the same tensor).
  Tensor add_parameter(const std::string& name, Tensor value, ParamKind kind);
  void add_child(const std::string& name, Module& child);

 private:
  struct Slot {
    std::string name;
    Tensor tensor;
    ParamKind kind;
  };
  std::vector<Slot> params_;
  std::vector<std::pair<std::string, Module*>> children_;
};

}  // namespace nsa::nn
