#include "io/checkpoint_dir.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace nsa {

namespace {

namespace fs = std::filesystem;

constexpr const char* kPrefix = "step_";
constexpr const char* kSuffix = ".h5";
// Steps beyond this many digits are not ours (and would overflow int64).
constexpr size_t kMaxStepDigits = 18;

// The step of a checkpoint file name ("step_00000100.h5" -> 100), or nothing for any other name.
std::optional<int64_t> step_of(const std::string& name) {
  const std::string prefix = kPrefix, suffix = kSuffix;
  if (name.size() <= prefix.size() + suffix.size()) return std::nullopt;
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > kMaxStepDigits) return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(digits);
}

}  // namespace

std::string checkpoint_path(const std::string& dir, int64_t step) {
  NSA_CHECK(step >= 0, "[checkpoint_path] negative step ", step);
  char name[48];
  std::snprintf(name, sizeof(name), "%s%08lld%s", kPrefix, static_cast<long long>(step), kSuffix);
  return (fs::path(dir) / name).string();
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return found;
  if (!fs::is_directory(dir, ec))
    throw InputError(dir + ": not a directory (expected a checkpoint directory)");
  fs::directory_iterator it(dir, ec);
  if (ec) throw InputError(dir + ": cannot list the checkpoint directory: " + ec.message());
  for (const fs::directory_entry& entry : it) {
    const std::optional<int64_t> step = step_of(entry.path().filename().string());
    if (step && entry.is_regular_file(ec)) found.emplace_back(*step, entry.path().string());
  }
  // Two names of one step ("step_5.h5", "step_00000005.h5") sort by name, so the order is stable.
  std::sort(found.begin(), found.end());
  return found;
}

std::optional<std::string> latest_checkpoint(const std::string& dir) {
  const auto found = list_checkpoints(dir);
  if (found.empty()) return std::nullopt;
  return found.back().second;
}

void prune_checkpoints(const std::string& dir, int64_t keep) {
  NSA_CHECK(keep >= 0, "[prune_checkpoints] keep must be >= 0, got ", keep);
  const auto found = list_checkpoints(dir);
  const size_t remove_count = found.size() > static_cast<size_t>(keep) ? found.size() - keep : 0;
  for (size_t i = 0; i < remove_count; ++i) {
    std::error_code ec;
    fs::remove(found[i].second, ec);
    if (ec) throw InputError(found[i].second + ": cannot delete an old checkpoint: " + ec.message());
  }
}

}  // namespace nsa
