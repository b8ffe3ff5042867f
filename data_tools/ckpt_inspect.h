// nsa-ckpt inspect: a readable summary of a checkpoint (whole, one tensor-parallel piece, or a set named by
// its stem) or of a safetensors export: format, step, model, counters, and a tree of the tensors with
// shapes, stored dtypes and sizes.
#pragma once

#include <string>

namespace nsa::data_tools {

struct InspectOptions {
  bool print_config = false;  // the stored YAML config in full
  bool brief = false;         // no tensor tree
};

// Prints to stdout; throws InputError on a bad file (after validating all of it).
void inspect_path(const std::string& path, const InspectOptions& options);

}  // namespace nsa::data_tools
