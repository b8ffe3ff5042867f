// Shared test helpers: GPU detection, random inputs, error measures, the f64 finite-difference gradient
// check, and a temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/cuda_api.h"
#include "core/error.h"
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

// A fresh directory under the system temp dir (mkdtemp), removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "nsa_io_test_XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

  // The names of the entries of the directory, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      out.push_back(entry.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

// The message of the InputError that `fn` throws ("" if it throws none): the one-line errors the readers give.
template <class Fn>
std::string input_error(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace nsa::test
