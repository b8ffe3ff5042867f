// The host-side CUDA runtime services of the core, behind a header without CUDA includes so that CPU-only
// code can ask "is there a GPU?" and pass streams around. Implemented in core/cuda/cuda_runtime.cpp, or by
// core/cuda/no_cuda.cpp when the build has no CUDA (then available() is false and the rest throws).
//
// Streams: every op runs on the *current stream* of the current device (thread-local; by default a
// non-blocking stream the framework creates per device, never the legacy stream 0, so a step can be
// captured in a CUDA graph). Nothing in an op synchronises with the host.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace nsa::cuda {

using Stream = void*;  // a cudaStream_t
using Event = void*;   // a cudaEvent_t

bool built_with_cuda();
// Built with CUDA and at least one device present.
bool available();
int device_count();
std::string device_name(int device);

int current_device();
void set_device(int device);

Stream current_stream();            // of the current device
void set_current_stream(Stream s);  // for this thread
Stream default_stream(int device);  // the framework's per-device stream
Stream create_stream();             // non-blocking; caller owns it (destroy_stream)
void destroy_stream(Stream s);
void synchronize_stream(Stream s);
void synchronize_device();

Event create_event(bool timing = false);
void destroy_event(Event e);
void record_event(Event e, Stream s);
void stream_wait_event(Stream s, Event e);
float elapsed_ms(Event start, Event end);  // synchronises on `end`

// Host <-> device copies ordered on the current stream; `sync` waits for completion (pageable memory).
void copy_to_device(void* dst, const void* src, size_t nbytes);
void copy_to_host(void* dst, const void* src, size_t nbytes);
void copy_device_to_device(void* dst, const void* src, size_t nbytes);

// Marks `ptr` (a live block of the caching allocator) as used on `s`, so that freeing it waits for the
// work queued on `s` before the block is reused on its own stream.
void record_stream(void* ptr, Stream s);

// A CUDA graph of the work queued on the current stream between capture_begin and capture_end, replayed
// with replay(). Tensors allocated during the capture come from a pool private to the graph (a replay
// writes into them), returned to the shared cache when the graph is destroyed. Inputs must be allocated
// before the capture and refilled in place between replays; nothing in the capture may synchronise with
// the host (ops never do; item/to_vector/to(cpu) do). Capture a step once it has run eagerly, so that
// lazily created resources (cuBLASLt plans and workspace, the error word) exist.
class Graph {
 public:
  Graph();
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  void capture_begin();
  void capture_end();
  void replay();  // on the current stream

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sets the current stream for a scope and restores the previous one.
class StreamGuard {
 public:
  explicit StreamGuard(Stream s) : prev_(current_stream()) { set_current_stream(s); }
  ~StreamGuard() { set_current_stream(prev_); }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream prev_;
};

}  // namespace nsa::cuda
