// safetensors files (the Hugging Face weight format): an 8-byte little-endian header length N, N bytes of
// JSON header {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"<key>": "<string>"}}, then the data buffer, each tensor's bytes at [begin, end) of it
// (row-major, little-endian). docs/tools.md describes how nsa-ckpt uses it.
//
// The writer pads the header with spaces so the data starts 8-byte aligned, stores tensors in the order
// given, back to back, and writes the file atomically (temp file, fsync, rename). The reader checks
// everything before it allocates: header length within the file and below 100 MB, strict JSON (io/json.h),
// known dtypes, shapes whose byte size equals the offsets, offsets that tile the data buffer exactly (no
// holes, no overlaps: the spec's rule), string-only metadata. Every problem is one InputError line
// "<file>: <what>".
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace nsa {

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as in the file: "F32", "BF16", "F16", "F64", ...
  Dims shape;
  uint64_t begin = 0, end = 0;  // byte range in the data buffer
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in header order
  Metadata metadata;                      // __metadata__, in header order
  uint64_t header_bytes = 0;              // N
  uint64_t data_bytes = 0;                // the data buffer's size
};

// Writes `tensors` (any device, any float dtype, any strides) stored as `dtype` (f32 -> "F32", bf16 ->
// "BF16", rounded to nearest even). Names must be unique and non-empty, and not "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      DType dtype, const Metadata& metadata = {});

// Reads and validates the header only.
SafetensorsHeader read_safetensors_header(const std::string& path);

struct SafetensorsContents {
  SafetensorsHeader header;
  std::vector<std::pair<std::string, Tensor>> tensors;  // contiguous CPU f32, in header order
};

// Reads a whole file. Floating dtypes F32, BF16, F16 and F64 are converted to f32 (exactly, except F64);
// any other dtype is an error naming the tensor.
SafetensorsContents load_safetensors(const std::string& path);

}  // namespace nsa
