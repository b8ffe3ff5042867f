// Training checkpoints: one HDF5 file per saved step holding the parameters, the optimizer state, the
// integer counters that make a resume exact, the step and the resolved config. docs/checkpoints.md
// describes the file layout, the atomic write and the directory naming.
//
// Invariants: a save is atomic (written to "<path>.tmp.<pid>", flushed, fsynced, renamed over <path>, the
// directory fsynced; on failure the temp file is removed and a previous checkpoint at <path> is untouched).
// A load returns CPU f32 tensors; every problem with a file is a one-line nsa::InputError naming the file
// and the object ("runs/x/step_00000100.h5: /params/blocks.0.attn.wq: unsupported dtype 'f16'").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace nsa {

inline constexpr const char* kCheckpointFormat = "nsa-train-checkpoint";
// Version 1: a whole checkpoint. Version 2: one rank's piece of a tensor-parallel set (version 1 plus the
// tp_* attributes below). Whole checkpoints are still written as version 1, so older builds read them.
inline constexpr int kCheckpointFormatVersion = 1;
inline constexpr int kCheckpointTpFormatVersion = 2;

// Where a stored tensor lies in the whole one: the slice [offset, offset + stored size) of dimension `dim`
// of a tensor whose extent along `dim` is `full_size` (the other dimensions are whole).
struct TensorSlice {
  int dim = 0;
  int64_t offset = 0;
  int64_t full_size = 0;

  bool operator==(const TensorSlice&) const = default;
};

// The piece of a tensor-parallel checkpoint set one file holds (io/tp_checkpoint.h makes and merges them).
// A tensor without an entry in the slice maps is stored whole (replicated, or owned by this rank).
struct TpPiece {
  int rank = 0;
  int size = 1;
  std::map<std::string, TensorSlice> param_slices;      // by parameter name
  std::map<std::string, TensorSlice> optimizer_slices;  // by optimizer entry name ("exp_avg/<param>")

  bool operator==(const TpPiece&) const = default;
};

struct CheckpointState {
  int64_t step = 0;
  std::string config_yaml;                                // the full resolved config
  std::vector<std::pair<std::string, Tensor>> params;     // dotted name -> tensor (any device, f32/bf16/f64)
  std::vector<std::pair<std::string, Tensor>> optimizer;  // e.g. "exp_avg/<param name>"
  std::vector<std::pair<std::string, int64_t>> counters;  // rng.seed, rng.offset, data.epoch, ...
  std::optional<TpPiece> tp;           // set: the file is rank tp->rank's piece of a set (format_version 2)
  DType params_stored = DType::f32;    // load only: how /params was stored (bf16 when any parameter was)
};

// Writes `state` to `path` atomically. Parameters are stored as `param_dtype` (f32, or bf16 rounded to
// nearest even exactly as to(t, DType::bf16) does); optimizer tensors always as f32. Tensors may live on
// any device (CUDA ones are copied to the host). Names are '/'-separated paths inside their group (a '/'
// makes intermediate groups); empty names, empty components, "." components and duplicates are refused.
// The directory of `path` must exist.
void save_checkpoint(const std::string& path, const CheckpointState& state, DType param_dtype = DType::f32);

// Reads and validates a checkpoint. Tensors come back as contiguous CPU f32 (bf16 widened exactly), in the
// order they were saved within each group; counters in the order they were saved. A per-rank piece of a
// tensor-parallel set loads as that piece (state.tp set); io/tp_checkpoint.h merges a whole set.
CheckpointState load_checkpoint(const std::string& path);

// dst = src with dst's dtype and device, after checking that the shapes agree; `what` names the source in
// the error ("<file>: /params/<name>: expected shape [4, 8], got [8, 4]"). Works on tensors that require
// grad (no autograd history is recorded).
void copy_into(const Tensor& dst, const Tensor& src, const std::string& what);

}  // namespace nsa
