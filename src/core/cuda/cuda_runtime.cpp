// CUDA runtime services of the core (see core/cuda_api.h): devices, the per-thread current stream,
// events and host<->device copies.
#include <array>
#include <mutex>

#include "core/cuda/cuda_check.h"
#include "core/cuda_api.h"

namespace nsa::cuda {
namespace {

constexpr int kMaxDevices = 16;

int probe_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: report none, clear the sticky error
    return 0;
  }
  return n;
}

std::mutex g_stream_mu;
std::array<cudaStream_t, kMaxDevices> g_default_streams{};
thread_local std::array<cudaStream_t, kMaxDevices> t_current_streams{};
thread_local bool t_has_current[kMaxDevices] = {};

void check_device(int device) {
  NSA_CHECK(device >= 0 && device < device_count(), "[cuda] device ", device, " requested, ", device_count(),
            " present");
}

}  // namespace

bool built_with_cuda() { return true; }

int device_count() {
  static const int n = probe_device_count();
  return n;
}

bool available() { return device_count() > 0; }

std::string device_name(int device) {
  check_device(device);
  cudaDeviceProp prop{};
  NSA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

int current_device() {
  int d = 0;
  NSA_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int device) {
  check_device(device);
  NSA_CUDA_CHECK(cudaSetDevice(device));
}

Stream default_stream(int device) {
  check_device(device);
  std::lock_guard<std::mutex> lock(g_stream_mu);
  if (!g_default_streams[device]) {
    int prev = current_device();
    NSA_CUDA_CHECK(cudaSetDevice(device));
    NSA_CUDA_CHECK(cudaStreamCreateWithFlags(&g_default_streams[device], cudaStreamNonBlocking));
    NSA_CUDA_CHECK(cudaSetDevice(prev));
  }
  return g_default_streams[device];
}

Stream current_stream() {
  const int d = current_device();
  if (t_has_current[d]) return t_current_streams[d];
  return default_stream(d);
}

void set_current_stream(Stream s) {
  const int d = current_device();
  t_current_streams[d] = static_cast<cudaStream_t>(s);
  t_has_current[d] = true;
}

Stream create_stream() {
  cudaStream_t s = nullptr;
  NSA_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void destroy_stream(Stream s) { NSA_CUDA_CHECK(cudaStreamDestroy(static_cast<cudaStream_t>(s))); }
void synchronize_stream(Stream s) { NSA_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(s))); }
void synchronize_device() { NSA_CUDA_CHECK(cudaDeviceSynchronize()); }

Event create_event(bool timing) {
  cudaEvent_t e = nullptr;
  NSA_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}
void destroy_event(Event e) { NSA_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(e))); }
void record_event(Event e, Stream s) {
  NSA_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(s)));
}
void stream_wait_event(Stream s, Event e) {
  NSA_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(s), static_cast<cudaEvent_t>(e), 0));
}
float elapsed_ms(Event start, Event end) {
  NSA_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(end)));
  float ms = 0;
  NSA_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
  return ms;
}

void copy_to_device(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  auto s = static_cast<cudaStream_t>(current_stream());
  NSA_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s));
  NSA_CUDA_CHECK(cudaStreamSynchronize(s));  // the host buffer may be freed right after we return
}

void copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  auto s = static_cast<cudaStream_t>(current_stream());
  NSA_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s));
  NSA_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_device_to_device(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  NSA_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice,
                                 static_cast<cudaStream_t>(current_stream())));
}

}  // namespace nsa::cuda
