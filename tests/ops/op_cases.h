// The table of op test cases shared by the f64 gradient checks (CPU) and the CUDA-vs-CPU comparisons:
// every differentiable op at several shapes, including odd sizes (1, 31, 33, 113...) and non-contiguous
// inputs. Adding an op means adding its cases here; both test suites pick them up.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace nsa::test {

struct InputSpec {
  enum class Kind { normal, positive, index, targets };
  Dims shape;
  Kind kind = Kind::normal;
  int64_t high = 0;  // index / targets: values in [0, high); targets also hold some ignore_index (-100)
  bool grad = true;  // float inputs: differentiate with respect to it
};

using OpFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;  // "<op>_<variant>": unique, a valid gtest name
  std::vector<InputSpec> inputs;
  OpFn fn;
  bool gradcheck = true;   // false for ops whose outputs are not differentiable or too large for FD
  double bf16_tol = 1e-2;  // relative (norm-wise) tolerance for bf16 CUDA vs the f64 reference
};

const std::vector<OpCase>& op_cases();

// Inputs of a case on `device` with float inputs in `dtype` (indices stay integral), from a fixed seed.
// When `requires_grad`, float inputs marked grad are leaves that require grad.
std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, Device device, bool requires_grad,
                                uint64_t seed);

}  // namespace nsa::test
