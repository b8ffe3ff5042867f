// Checkpoint directories: naming, listing (temp files and other names ignored), latest, pruning.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/checkpoint.h"
#include "io/checkpoint_dir.h"
#include "io/io_test_util.h"
#include "test_util.h"

namespace nsa::test {
namespace {

namespace fs = std::filesystem;

void touch(const std::string& path) { std::ofstream(path).put('x'); }

std::vector<int64_t> steps_in(const std::string& dir) {
  std::vector<int64_t> steps;
  for (const auto& [step, path] : list_checkpoints(dir)) {
    EXPECT_EQ(path, checkpoint_path(dir, step));
    steps.push_back(step);
  }
  return steps;
}

TEST(CheckpointDir, PathNaming) {
  EXPECT_EQ(checkpoint_path("runs/x", 100), "runs/x/step_00000100.h5");
  EXPECT_EQ(checkpoint_path("runs/x/", 0), "runs/x/step_00000000.h5");
  EXPECT_EQ(checkpoint_path("d", 123456789), "d/step_123456789.h5");
  EXPECT_THROW(checkpoint_path("d", -1), Error);
}

TEST(CheckpointDir, ListAndLatestIgnoreOtherFiles) {
  TempDir dir;
  EXPECT_TRUE(list_checkpoints(dir.path()).empty());
  EXPECT_FALSE(latest_checkpoint(dir.path()).has_value());
  EXPECT_FALSE(latest_checkpoint(dir.file("does_not_exist")).has_value());

  for (int64_t step : {100, 20, 3, 123456789}) touch(checkpoint_path(dir.path(), step));
  for (const char* other : {"step_00000500.h5.tmp.4242", "step_abc.h5", "step_.h5", "notes.txt", "step_7.h5x",
                            "xstep_00000009.h5", "step_-0000001.h5"}) {
    touch(dir.file(other));
  }
  fs::create_directory(dir.file("step_00000900.h5"));  // a directory is not a checkpoint

  EXPECT_EQ(steps_in(dir.path()), (std::vector<int64_t>{3, 20, 100, 123456789}));
  EXPECT_EQ(latest_checkpoint(dir.path()), checkpoint_path(dir.path(), 123456789));

  expect_input_error([&] { list_checkpoints(dir.file("notes.txt")); }, {"notes.txt", "not a directory"});
}

TEST(CheckpointDir, PruneKeepsTheNewest) {
  TempDir dir;
  for (int64_t step : {10, 40, 20, 30, 50}) touch(checkpoint_path(dir.path(), step));
  touch(dir.file("step_00000060.h5.tmp.1"));
  touch(dir.file("config.yaml"));

  prune_checkpoints(dir.path(), 10);  // fewer than `keep`: nothing goes
  EXPECT_EQ(steps_in(dir.path()), (std::vector<int64_t>{10, 20, 30, 40, 50}));
  prune_checkpoints(dir.path(), 2);
  EXPECT_EQ(steps_in(dir.path()), (std::vector<int64_t>{40, 50}));
  EXPECT_TRUE(fs::exists(dir.file("config.yaml")));
  EXPECT_TRUE(fs::exists(dir.file("step_00000060.h5.tmp.1")));
  prune_checkpoints(dir.path(), 0);
  EXPECT_TRUE(steps_in(dir.path()).empty());
  EXPECT_EQ(dir.names(), (std::vector<std::string>{"config.yaml", "step_00000060.h5.tmp.1"}));
  EXPECT_THROW(prune_checkpoints(dir.path(), -1), Error);
}

TEST(CheckpointDir, ResumeFromTheLatestSave) {
  TempDir dir;
  for (int64_t step : {5, 15, 10}) {
    CheckpointState state;
    state.step = step;
    state.params = {{"w", full({2}, static_cast<double>(step))}};
    state.counters = {{"optimizer.step", step}};
    save_checkpoint(checkpoint_path(dir.path(), step), state);
    prune_checkpoints(dir.path(), 2);
  }
  EXPECT_EQ(steps_in(dir.path()), (std::vector<int64_t>{10, 15}));
  const std::optional<std::string> latest = latest_checkpoint(dir.path());
  ASSERT_TRUE(latest.has_value());
  const CheckpointState loaded = load_checkpoint(*latest);
  EXPECT_EQ(loaded.step, 15);
  EXPECT_EQ(to_vector<float>(loaded.params.at(0).second), (std::vector<float>{15, 15}));
  EXPECT_EQ(loaded.counters, (std::vector<std::pair<std::string, int64_t>>{{"optimizer.step", 15}}));
}

}  // namespace
}  // namespace nsa::test
