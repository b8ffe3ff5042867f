// Grad mode: whether ops record autograd history on this thread. NoGradGuard turns it off for a scope
// (evaluation, optimizer updates, and the engine itself while it runs backward functions).
#pragma once

namespace nsa::autograd {

bool grad_enabled();
void set_grad_enabled(bool enabled);

class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace nsa::autograd

namespace nsa {
using autograd::NoGradGuard;
}
