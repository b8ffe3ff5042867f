// Tensor-parallel checkpoint sets: one file per TP rank, "<stem>.tp<r>-of-<N>.h5", each a checkpoint
// (format_version 2) that holds rank r's slices of the split tensors, the routed experts it owns, the
// replicated tensors, and the same step, config and counters as the others. Which slice a rank holds
// comes from dist::tp_shard (src/dist/sharding.h); optimizer entries "<kind>/<param>" follow their
// parameter. docs/checkpoints.md describes the layout; `nsa-ckpt reshard` converts between set sizes.
//
// The trainer writes whole checkpoints (gathered on rank 0); sets are for jobs that save per rank, and
// for moving a checkpoint between TP sizes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/checkpoint.h"

namespace nsa {

// "<stem>.tp<r>-of-<N>.h5" (rank and size in decimal, no padding).
std::string tp_piece_path(const std::string& stem, int rank, int size);

struct TpPiecePath {
  std::string stem;
  int rank = 0, size = 1;
};
// The stem, rank and size of a piece's file name; nullopt when `path` is not named like a piece.
std::optional<TpPiecePath> parse_tp_piece_path(const std::string& path);

// Cuts a whole state (state.tp unset) into the pieces of `tp` ranks, in rank order. Split tensors become
// contiguous copies of their slices. Throws InputError when the model cannot be split tp ways
// (dist::validate_tp) or a tensor has no sharding rule.
std::vector<CheckpointState> split_tp_checkpoint(const CheckpointState& whole, const Config& config, int tp);

// Puts pieces (all ranks of one set, in rank order) back together. Checks, with a one-line InputError naming
// `source` and the tensor: every piece carries its rank of the same size; step, config and counters agree;
// the slices of a split tensor tile its whole extent along the table's dimension (and match the table's
// bounds); an owned tensor is on its owner only; a replicated tensor is on every rank with equal values.
CheckpointState merge_tp_checkpoint(const std::vector<CheckpointState>& pieces, const Config& config,
                                    const std::string& source);

// Writes every piece to tp_piece_path(stem, r, N) (each file atomically).
void save_tp_checkpoint(const std::string& stem, const std::vector<CheckpointState>& pieces,
                        DType param_dtype = DType::f32);

// Reads the N pieces of the set "<stem>.tp<r>-of-<N>.h5", checking that each file says it is that rank.
std::vector<CheckpointState> load_tp_checkpoint(const std::string& stem, int size);

struct WholeCheckpoint {
  CheckpointState state;  // whole (state.tp unset)
  Config config;          // parsed from the stored config
  int source_tp = 1;      // 1: a whole file; N: merged from a set of N pieces
  std::vector<std::string> files;
};

// A whole checkpoint from what `path` names: a whole file; one piece of a set (the whole set is read and
// merged); or a set's stem ("runs/x/step_100" or "runs/x/step_100.h5" when only the pieces exist).
WholeCheckpoint load_whole_checkpoint(const std::string& path);

}  // namespace nsa
