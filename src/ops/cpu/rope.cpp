// CPU reference: rotary position embedding, angles in double. Tokens are split over the thread pool.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {

void CpuBackend::rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta,
                      int64_t rot_dim, bool inverse) {
  const int64_t tokens = x.size(0), heads = x.size(1), hd = x.size(2), half = rot_dim / 2;
  // cos and sin of pos·θ^(−2i/rot_dim), computed exactly as written here wherever they are used.
  auto angle_of = [&](int64_t pos, int64_t i) {
    return static_cast<double>(pos) *
           std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
  };
  // Positions repeat across the sequences of a batch: when they all lie in [0, tokens), their cos/sin are
  // tabulated once per position value (the same expressions, so the same bits) instead of once per token.
  bool tabulate = half > 0;
  int64_t max_pos = 0;
  for (int64_t t = 0; t < tokens && tabulate; ++t) {
    const int64_t pos = index_at(positions, t);
    tabulate = pos >= 0 && pos < tokens;
    max_pos = std::max(max_pos, pos);
  }
  std::vector<double> table;  // [position][i] → (cos, sin)
  if (tabulate) {
    table.resize(static_cast<size_t>((max_pos + 1) * half * 2));
    parallel_for(max_pos + 1, std::max<int64_t>(1, 256 / half), [&](int64_t begin, int64_t end) {
      for (int64_t pos = begin; pos < end; ++pos) {
        for (int64_t i = 0; i < half; ++i) {
          const double angle = angle_of(pos, i);
          table[static_cast<size_t>((pos * half + i) * 2)] = std::cos(angle);
          table[static_cast<size_t>((pos * half + i) * 2 + 1)] = std::sin(angle);
        }
      }
    });
  }
  dispatch_floating(x.dtype(), "rope", [&]<class T>() {
    const T* px = static_cast<const T*>(x.data_ptr());
    T* po = static_cast<T*>(out.data_ptr());
    parallel_for(tokens, std::max<int64_t>(1, 16384 / std::max<int64_t>(heads * hd, 1)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t t = begin; t < end; ++t) {
                     const int64_t pos = index_at(positions, t);
                     for (int64_t i = 0; i < half; ++i) {
                       double c, sn;
                       if (tabulate) {
                         c = table[static_cast<size_t>((pos * half + i) * 2)];
                         sn = table[static_cast<size_t>((pos * half + i) * 2 + 1)];
                       } else {
                         const double angle = angle_of(pos, i);
                         c = std::cos(angle);
                         sn = std::sin(angle);
                       }
                       const double s = inverse ? -sn : sn;
                       for (int64_t h = 0; h < heads; ++h) {
                         const int64_t base = (t * heads + h) * hd;
                         const double a = to_f64(px[base + i]), b = to_f64(px[base + i + half]);
                         po[base + i] = from_f64<T>(a * c - b * s);
                         po[base + i + half] = from_f64<T>(b * c + a * s);
                       }
                     }
                     for (int64_t h = 0; h < heads; ++h)
                       for (int64_t i = rot_dim; i < hd; ++i)
                         po[(t * heads + h) * hd + i] = px[(t * heads + h) * hd + i];
                   }
                 });
  });
}

}  // namespace nsa::cpu
