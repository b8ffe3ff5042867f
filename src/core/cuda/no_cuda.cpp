// The core's CUDA services in a build without CUDA (-DNSA_CUDA=OFF): nothing is available, and asking for
// a CUDA resource is a clear error rather than a link failure.
#include "core/allocator.h"
#include "core/cuda_api.h"
#include "core/error.h"

namespace nsa {

Allocator& allocator_for(Device device) {
  NSA_CHECK(device.is_cpu(), "[device] ", device.str(), " requested but nsa-train was built without CUDA");
  return cpu_allocator();
}

namespace cuda {
namespace {
[[noreturn]] void no_cuda() { NSA_FAIL("[cuda] nsa-train was built without CUDA (-DNSA_CUDA=OFF)"); }
}  // namespace

bool built_with_cuda() { return false; }
bool available() { return false; }
int device_count() { return 0; }
std::string device_name(int) { no_cuda(); }
int current_device() { return 0; }
void set_device(int) { no_cuda(); }
Stream current_stream() { return nullptr; }
void set_current_stream(Stream) {}
Stream default_stream(int) { return nullptr; }
Stream create_stream() { no_cuda(); }
void destroy_stream(Stream) {}
void synchronize_stream(Stream) {}
void synchronize_device() {}
Event create_event(bool) { no_cuda(); }
void destroy_event(Event) {}
void record_event(Event, Stream) { no_cuda(); }
void stream_wait_event(Stream, Event) { no_cuda(); }
float elapsed_ms(Event, Event) { no_cuda(); }
void copy_to_device(void*, const void*, size_t) { no_cuda(); }
void copy_to_host(void*, const void*, size_t) { no_cuda(); }
void copy_device_to_device(void*, const void*, size_t) { no_cuda(); }
void record_stream(void*, Stream) { no_cuda(); }

struct Graph::Impl {};
Graph::Graph() = default;
Graph::~Graph() = default;
void Graph::capture_begin() { no_cuda(); }
void Graph::capture_end() { no_cuda(); }
void Graph::replay() { no_cuda(); }
}  // namespace cuda

}  // namespace nsa
