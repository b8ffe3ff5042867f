#include "nn/module.h"

#include "ops/view.h"

namespace nsa::nn {

std::vector<NamedParam> Module::named_parameters(const std::string& prefix) const {
  std::vector<NamedParam> out;
  for (const Slot& p : params_) out.push_back({prefix + p.name, p.tensor, p.kind});
  for (const auto& [name, child] : children_) {
    for (NamedParam& p : child->named_parameters(prefix + name + ".")) out.push_back(std::move(p));
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const NamedParam& p : named_parameters()) n += p.tensor.numel();
  return n;
}

Tensor Module::add_parameter(const std::string& name, Tensor value, ParamKind kind) {
  NSA_CHECK(value.dtype() == DType::f32 || value.dtype() == DType::f64, "[module] parameter '", name,
            "' must be f32 (master weights) or f64 (gradient checks), got ", value.desc());
  Tensor leaf = detach(value);
  leaf.set_requires_grad(true);
  params_.push_back({name, leaf, kind});
  return leaf;
}

void Module::add_child(const std::string& name, Module& child) { children_.emplace_back(name, &child); }

}  // namespace nsa::nn
