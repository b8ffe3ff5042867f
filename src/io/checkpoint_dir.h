// The checkpoints of a run directory: files named step_<8+ digit step>.h5, found by name alone (temp
// files "<name>.tmp.<pid>" of an unfinished save and any other file are ignored), newest = largest step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nsa {

// "<dir>/step_00000100.h5" (the step zero-padded to 8 digits; larger steps use more digits).
std::string checkpoint_path(const std::string& dir, int64_t step);

// (step, path) of every checkpoint in `dir`, by increasing step; empty when `dir` does not exist.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& dir);

// The path of the checkpoint with the largest step, if any.
std::optional<std::string> latest_checkpoint(const std::string& dir);

// Deletes all checkpoints but the `keep` newest (keep >= 0). Other files are left alone.
void prune_checkpoints(const std::string& dir, int64_t keep);

}  // namespace nsa
