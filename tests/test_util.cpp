#include "test_util.h"

#include <cmath>
#include <sstream>

namespace nsa::test {

double rel_error(const Tensor& a, const Tensor& ref) {
  EXPECT_EQ(a.shape(), ref.shape()) << a.desc() << " vs " << ref.desc();
  const std::vector<double> x = to_vector<double>(a), y = to_vector<double>(ref);
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (std::isnan(x[i]) != std::isnan(y[i])) return INFINITY;
    if (std::isnan(x[i])) continue;
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

std::pair<double, int64_t> max_abs_error(const Tensor& a, const Tensor& ref) {
  const std::vector<double> x = to_vector<double>(a), y = to_vector<double>(ref);
  double worst = 0;
  int64_t at = -1;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    const double d = std::abs(x[i] - y[i]);
    if (d > worst || std::isnan(d)) {
      worst = std::isnan(d) ? INFINITY : d;
      at = static_cast<int64_t>(i);
    }
  }
  return {worst, at};
}

bool equal_values(const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape())) return false;
  return to_vector<double>(a) == to_vector<double>(b);
}

double gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
                 std::vector<Tensor> inputs, std::string* report, double eps) {
  for (const Tensor& t : inputs) {
    EXPECT_TRUE(t.device().is_cpu());
    if (t.requires_grad()) {
      EXPECT_EQ(t.dtype(), DType::f64) << "gradcheck needs f64 inputs";
    }
  }
  // Fixed random weights turn the outputs into one scalar.
  std::vector<Tensor> weights;
  Generator gen(1234);
  {
    NoGradGuard no_grad;
    for (const Tensor& o : fn(inputs))
      weights.push_back(is_floating(o.dtype()) ? randn(o.shape(), DType::f64, Device::cpu(), &gen)
                                               : Tensor());
  }
  auto scalar = [&](const std::vector<Tensor>& outs) {
    Tensor total;
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!weights[i].defined()) continue;
      Tensor term = sum(mul(outs[i], weights[i]));
      total = total.defined() ? add(total, term) : term;
    }
    return total;
  };

  backward(scalar(fn(inputs)));

  double worst = 0;
  std::ostringstream rep;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    EXPECT_TRUE(x.is_contiguous());
    const Tensor analytic = x.grad();
    EXPECT_TRUE(analytic.defined()) << "input " << k << " received no gradient";
    if (!analytic.defined()) return INFINITY;
    std::vector<double> numeric(static_cast<size_t>(x.numel()));
    double* p = x.data<double>();
    NoGradGuard no_grad;
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double orig = p[j];
      p[j] = orig + eps;
      const double up = item(scalar(fn(inputs)));
      p[j] = orig - eps;
      const double down = item(scalar(fn(inputs)));
      p[j] = orig;
      numeric[j] = (up - down) / (2 * eps);
    }
    const Tensor num = from_vector<double>(numeric, x.shape());
    const double err = rel_error(analytic, num);
    worst = std::max(worst, err);
    rep << " input" << k << " " << x.shape().str() << " rel_err=" << err;
  }
  if (report) *report = rep.str();
  return worst;
}

}  // namespace nsa::test
