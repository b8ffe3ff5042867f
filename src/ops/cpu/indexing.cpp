// CPU reference: index_select / index_add along the middle dim of [outer, n, inner], gather / scatter_add.
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace nsa::cpu {
namespace {

int64_t checked(int64_t i, int64_t n, const char* op) {
  NSA_CHECK(i >= 0 && i < n, "[", op, "] index ", i, " out of range [0, ", n, ")");
  return i;
}

}  // namespace

void CpuBackend::index_select(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer,
                              int64_t n, int64_t inner) {
  const int64_t m = index.numel();
  dispatch_all(src.dtype(), "index_select", [&]<class T>() {
    const T* s = static_cast<const T*>(src.data_ptr());
    T* o = static_cast<T*>(out.data_ptr());
    for (int64_t j = 0; j < m; ++j) {
      const int64_t row = checked(index_at(index, j), n, "index_select");
      for (int64_t a = 0; a < outer; ++a)
        for (int64_t c = 0; c < inner; ++c) o[(a * m + j) * inner + c] = s[(a * n + row) * inner + c];
    }
  });
}

void CpuBackend::index_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer,
                           int64_t n, int64_t inner) {
  const int64_t m = index.numel();
  dispatch_floating(dst.dtype(), "index_add", [&]<class T>() {
    T* d = static_cast<T*>(dst.data_ptr());
    const T* s = static_cast<const T*>(src.data_ptr());
    // Accumulate in double so that repeated indices do not round at every addition.
    std::vector<double> acc(static_cast<size_t>(dst.numel()));
    for (int64_t i = 0; i < dst.numel(); ++i) acc[i] = to_f64(d[i]);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t row = checked(index_at(index, j), n, "index_add");
      for (int64_t a = 0; a < outer; ++a)
        for (int64_t c = 0; c < inner; ++c)
          acc[(a * n + row) * inner + c] += to_f64(s[(a * m + j) * inner + c]);
    }
    for (int64_t i = 0; i < dst.numel(); ++i) d[i] = from_f64<T>(acc[i]);
  });
}

void CpuBackend::gather(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer, int64_t n,
                        int64_t inner) {
  const int64_t m = outer > 0 && inner > 0 ? index.numel() / (outer * inner) : 0;
  dispatch_all(src.dtype(), "gather", [&]<class T>() {
    const T* s = static_cast<const T*>(src.data_ptr());
    T* o = static_cast<T*>(out.data_ptr());
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t c = 0; c < inner; ++c) {
          const int64_t e = (a * m + j) * inner + c;
          o[e] = s[(a * n + checked(index_at(index, e), n, "gather")) * inner + c];
        }
  });
}

void CpuBackend::scatter_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer,
                             int64_t n, int64_t inner) {
  const int64_t m = outer > 0 && inner > 0 ? index.numel() / (outer * inner) : 0;
  dispatch_floating(dst.dtype(), "scatter_add", [&]<class T>() {
    T* d = static_cast<T*>(dst.data_ptr());
    const T* s = static_cast<const T*>(src.data_ptr());
    std::vector<double> acc(static_cast<size_t>(dst.numel()));
    for (int64_t i = 0; i < dst.numel(); ++i) acc[i] = to_f64(d[i]);
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t c = 0; c < inner; ++c) {
          const int64_t e = (a * m + j) * inner + c;
          acc[(a * n + checked(index_at(index, e), n, "scatter_add")) * inner + c] += to_f64(s[e]);
        }
    for (int64_t i = 0; i < dst.numel(); ++i) d[i] = from_f64<T>(acc[i]);
  });
}

}  // namespace nsa::cpu

namespace nsa::cpu {

void CpuBackend::shard_index(const Tensor& local, const Tensor& mask, const Tensor& ids, int64_t begin,
                             int64_t count) {
  int64_t* out = local.data<int64_t>();
  dispatch_floating(mask.dtype(), "shard_index", [&]<class T>() {
    T* m = static_cast<T*>(mask.data_ptr());
    for (int64_t i = 0; i < ids.numel(); ++i) {
      const int64_t r = index_at(ids, i) - begin;
      const bool in = r >= 0 && r < count;
      out[i] = in ? r : 0;
      m[i] = from_f64<T>(in ? 1.0 : 0.0);
    }
  });
}

}  // namespace nsa::cpu
