// CPU reference: rotary position embedding, angles in double.
#include <cmath>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace nsa::cpu {

void CpuBackend::rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta,
                      int64_t rot_dim, bool inverse) {
  const int64_t tokens = x.size(0), heads = x.size(1), hd = x.size(2), half = rot_dim / 2;
  dispatch_floating(x.dtype(), "rope", [&]<class T>() {
    const T* px = static_cast<const T*>(x.data_ptr());
    T* po = static_cast<T*>(out.data_ptr());
    for (int64_t t = 0; t < tokens; ++t) {
      const double pos = static_cast<double>(index_at(positions, t));
      for (int64_t i = 0; i < half; ++i) {
        const double angle =
            pos * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
        const double c = std::cos(angle), s = inverse ? -std::sin(angle) : std::sin(angle);
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t base = (t * heads + h) * hd;
          const double a = to_f64(px[base + i]), b = to_f64(px[base + i + half]);
          po[base + i] = from_f64<T>(a * c - b * s);
          po[base + i + half] = from_f64<T>(b * c + a * s);
        }
      }
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = rot_dim; i < hd; ++i) po[(t * heads + h) * hd + i] = px[(t * heads + h) * hd + i];
    }
  });
}

}  // namespace nsa::cpu
