// AdamW: checks, the CPU reference update, dispatch to the CUDA multi-tensor kernel, checkpoint state.
#include "optim/adamw.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "ops/ops.h"
#include "optim/cuda_bindings.h"

namespace nsa {
namespace {

using optim_cuda::AdamWSlot;
using optim_cuda::AdamWStepScalars;

// The reference: every element in double from the f32 state, rounded to f32 once at the end.
void adamw_update_cpu(std::span<const AdamWSlot> slots, const AdamWStepScalars& s, const Tensor& grad_scale) {
  const double scale = grad_scale.defined() ? static_cast<double>(*grad_scale.data<float>()) : 1.0;
  for (const AdamWSlot& slot : slots) {
    float* p = slot.param.data<float>();
    const float* g = slot.grad.data<float>();
    float* m = slot.exp_avg.data<float>();
    float* v = slot.exp_avg_sq.data<float>();
    const double decay = slot.decay ? s.decay_factor : 1.0;
    const int64_t n = slot.param.numel();
    for (int64_t i = 0; i < n; ++i) {
      const double gi = static_cast<double>(g[i]) * scale;
      const double mi = s.beta1 * m[i] + (1.0 - s.beta1) * gi;
      const double vi = s.beta2 * v[i] + (1.0 - s.beta2) * (gi * gi);
      const double denom = std::sqrt(vi) / s.bias_correction2_sqrt + s.eps;
      p[i] = static_cast<float>(p[i] * decay - s.step_size * (mi / denom));
      m[i] = static_cast<float>(mi);
      v[i] = static_cast<float>(vi);
    }
  }
}

void check_unit_interval(double value, const char* key) {
  if (!(value >= 0.0 && value < 1.0))
    throw InputError(str("optimizer.", key, ": expected a value in [0, 1), got ", value));
}

}  // namespace

AdamW::AdamW(std::vector<OptimParam> params, const OptimizerConfig& config)
    : params_(std::move(params)), config_(config) {
  check_unit_interval(config_.beta1, "beta1");
  check_unit_interval(config_.beta2, "beta2");
  if (!(config_.eps > 0.0))
    throw InputError(str("optimizer.eps: expected a positive value, got ", config_.eps));
  if (!(config_.weight_decay >= 0.0))
    throw InputError(str("optimizer.weight_decay: expected a value >= 0, got ", config_.weight_decay));
  std::unordered_set<std::string> names;
  std::unordered_map<const void*, std::string> storage_of;  // a tied tensor listed twice would step twice
  for (const OptimParam& p : params_) {
    NSA_CHECK(!p.name.empty(), "[adamw] a parameter has an empty name");
    NSA_CHECK(names.insert(p.name).second, "[adamw] duplicate parameter name '", p.name, "'");
    NSA_CHECK(p.param.defined(), "[adamw] parameter '", p.name, "' is undefined");
    NSA_CHECK(p.param.dtype() == DType::f32 && p.param.is_contiguous(), "[adamw] parameter '", p.name,
              "': expected a contiguous f32 tensor, got ", p.param.desc());
    NSA_CHECK(p.param.device() == params_.front().param.device(), "[adamw] parameter '", p.name, "' is on ",
              p.param.device().str(), ", the first one on ", params_.front().param.device().str(),
              " (one device per optimizer)");
    if (p.param.numel() > 0) {
      const auto [it, fresh] = storage_of.emplace(p.param.data_ptr(), p.name);
      NSA_CHECK(fresh, "[adamw] parameters '", it->second, "' and '", p.name,
                "' are the same tensor (list a tied parameter once)");
    }
    exp_avg_.push_back(zeros(p.param.shape(), DType::f32, p.param.device()));
    exp_avg_sq_.push_back(zeros(p.param.shape(), DType::f32, p.param.device()));
  }
}

void AdamW::step(double lr, const Tensor& grad_scale) {
  const std::vector<Tensor> own = grads();
  step(lr, grad_scale, own);
}

void AdamW::step(double lr, const Tensor& grad_scale, std::span<const Tensor> grads) {
  NSA_CHECK(grads.size() == params_.size(), "[adamw] step with ", grads.size(), " gradients for ",
            params_.size(), " parameters");
  ++step_count_;
  const double t = static_cast<double>(step_count_);
  const AdamWStepScalars scalars{config_.beta1,
                                 config_.beta2,
                                 config_.eps,
                                 lr / (1.0 - std::pow(config_.beta1, t)),
                                 std::sqrt(1.0 - std::pow(config_.beta2, t)),
                                 1.0 - lr * config_.weight_decay};
  std::vector<AdamWSlot> slots;
  for (size_t i = 0; i < params_.size(); ++i) {
    const OptimParam& p = params_[i];
    Tensor grad = grads[i];
    if (!grad.defined()) continue;
    NSA_CHECK(grad.shape() == p.param.shape() && grad.device() == p.param.device(), "[adamw] grad of '",
              p.name, "' is ", grad.desc(), ", the parameter ", p.param.desc());
    grad = contiguous(to(grad, DType::f32));
    slots.push_back({p.param, grad, exp_avg_[i], exp_avg_sq_[i], p.decay});
  }
  if (slots.empty()) return;
  const Device device = slots.front().param.device();
  if (grad_scale.defined()) {
    NSA_CHECK(grad_scale.numel() == 1 && grad_scale.dtype() == DType::f32 && grad_scale.device() == device,
              "[adamw] expected grad_scale as one f32 value on ", device.str(), ", got ", grad_scale.desc());
  }
  if (device.is_cpu()) {
    adamw_update_cpu(slots, scalars, grad_scale);
  } else {
    optim_cuda::adamw_update(slots, scalars, grad_scale);
  }
}

void AdamW::zero_grad(bool set_to_none) {
  for (OptimParam& p : params_) {
    if (set_to_none) {
      if (p.param.grad().defined()) p.param.set_grad(Tensor());
    } else if (const Tensor g = p.param.grad(); g.defined()) {
      fill_(g, 0.0);
    }
  }
}

std::vector<Tensor> AdamW::grads() const {
  std::vector<Tensor> grads;
  grads.reserve(params_.size());
  for (const OptimParam& p : params_) grads.push_back(p.param.grad());
  return grads;
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> entries;
  entries.reserve(2 * params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    entries.emplace_back("exp_avg/" + params_[i].name, exp_avg_[i]);
    entries.emplace_back("exp_avg_sq/" + params_[i].name, exp_avg_sq_[i]);
  }
  return entries;
}

void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count,
                       const std::string& source) {
  if (step_count < 0) throw InputError(str(source, ": expected a step count >= 0, got ", step_count));
  std::unordered_map<std::string, Tensor> by_name;
  for (const auto& [name, tensor] : state) {
    if (!by_name.emplace(name, tensor).second)
      throw InputError(str(source, ": entry '", name, "' appears twice"));
  }
  // Check everything before copying anything, so a bad state leaves the optimizer as it was.
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  auto take = [&](const std::string& key, const Tensor& dst) {
    const auto it = by_name.find(key);
    if (it == by_name.end()) throw InputError(str(source, ": missing entry '", key, "'"));
    const Tensor src = it->second;
    if (!src.defined() || !is_floating(src.dtype()) || src.shape() != dst.shape()) {
      throw InputError(str(source, ": entry '", key, "' is ", src.defined() ? src.desc() : "undefined",
                           ", expected f32", dst.shape().str()));
    }
    copies.emplace_back(dst, src);
    by_name.erase(it);
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    take("exp_avg/" + params_[i].name, exp_avg_[i]);
    take("exp_avg_sq/" + params_[i].name, exp_avg_sq_[i]);
  }
  for (const auto& entry : state) {  // the first leftover in the state's order
    if (by_name.contains(entry.first)) {
      throw InputError(
          str(source, ": unexpected entry '", entry.first, "' (no parameter of that name in the optimizer)"));
    }
  }
  for (const auto& [dst, src] : copies) copy_(dst, contiguous(to(src, dst.device(), DType::f32)));
  step_count_ = step_count;
}

}  // namespace nsa
