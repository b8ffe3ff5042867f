// Shared test helpers: GPU detection, random inputs, error measures, and the f64 finite-difference
// gradient check.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/cuda_api.h"
#include "ops/ops.h"

namespace nsa::test {

inline bool has_gpu() { return cuda::available(); }

// Skips the current test on machines without a CUDA device (and in CPU-only builds).
#define NSA_REQUIRE_GPU()                                                          \
  do {                                                                             \
    if (!::nsa::test::has_gpu()) GTEST_SKIP() << "no CUDA device on this machine"; \
  } while (0)

// ‖a − b‖₂ / ‖b‖₂ computed in double on the host (b is the reference); 0 when both are zero.
double rel_error(const Tensor& a, const Tensor& ref);
// max |a − b| and its flat index.
std::pair<double, int64_t> max_abs_error(const Tensor& a, const Tensor& ref);
// True when the tensors hold exactly the same values (after conversion to double).
bool equal_values(const Tensor& a, const Tensor& b);

// Central-difference gradient check in f64 on the CPU. `fn` maps inputs to outputs; the scalar checked is
// Σ_o Σ(out_o · w_o) with fixed random weights w_o. Returns the worst relative error (‖analytic − numeric‖ /
// ‖numeric‖) over the inputs that require grad, and writes a one-line report per input into `report`.
double gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
                 std::vector<Tensor> inputs, std::string* report, double eps = 1e-6);

}  // namespace nsa::test
