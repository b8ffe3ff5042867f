// Loading bad files: each problem must be one clear InputError naming the file (and the object inside it),
// never a crash. Files are damaged through the HDF5 C API (no h5dump/h5py here).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "io/checkpoint.h"
#include "io/hdf5_attributes.h"
#include "io/hdf5_handle.h"
#include "io/io_test_util.h"
#include "test_util.h"

namespace nsa::test {
namespace {

namespace fs = std::filesystem;

// A valid checkpoint with a parameter named as in the docs' example.
std::string write_valid(const TempDir& dir, const std::string& name = "step_00000100.h5") {
  Generator gen(1);
  CheckpointState state;
  state.step = 100;
  state.config_yaml = "model:\n  d_model: 64\n";
  state.params = {{"blocks.0.attn.wq", randn({64, 64}, DType::f32, Device::cpu(), &gen)},
                  {"blocks.0.attn.wk", randn({64, 32}, DType::f32, Device::cpu(), &gen)}};
  state.optimizer = {{"exp_avg/blocks.0.attn.wq", randn({64, 64}, DType::f32, Device::cpu(), &gen)}};
  state.counters = {{"rng.seed", 1}, {"optimizer.step", 100}};
  const std::string path = dir.file(name);
  save_checkpoint(path, state);
  return path;
}

// Opens `path` for writing with the raw C API and lets `edit` change it.
void edit_file(const std::string& path, const std::function<void(hid_t file)>& edit) {
  h5::silence_errors();
  h5::File file = h5::take<h5::File>(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), path, "", "open");
  edit(file.id());
  ASSERT_TRUE(file.close());
}

void edit_root(const std::string& path, const std::function<void(hid_t root)>& edit) {
  edit_file(path, [&](hid_t file) {
    h5::Group root = h5::take<h5::Group>(H5Gopen2(file, "/", H5P_DEFAULT), path, "/", "open");
    edit(root.id());
  });
}

void edit_dataset(const std::string& path, const std::string& name, const std::function<void(hid_t)>& edit) {
  edit_file(path, [&](hid_t file) {
    h5::Dataset dataset =
        h5::take<h5::Dataset>(H5Dopen2(file, name.c_str(), H5P_DEFAULT), path, name, "open");
    edit(dataset.id());
  });
}

void expect_load_error(const std::string& path, const std::vector<std::string>& fragments) {
  std::vector<std::string> all = fragments;
  all.insert(all.begin(), path);
  expect_input_error([&] { load_checkpoint(path); }, all);
  EXPECT_EQ(open_hdf5_objects(), 0) << "a failed load left HDF5 objects open";
}

TEST(CheckpointErrors, MissingFileAndDirectory) {
  TempDir dir;
  expect_load_error(dir.file("nope.h5"), {"no such file"});
  expect_load_error(dir.path(), {"not a regular file"});
}

TEST(CheckpointErrors, NotHdf5) {
  TempDir dir;
  const std::string random_path = dir.file("random.h5");
  {
    std::mt19937 rng(5);
    std::ofstream out(random_path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>(rng() & 0xff));
  }
  expect_load_error(random_path, {"not an HDF5 file"});
  const std::string empty_path = dir.file("empty.h5");
  std::ofstream(empty_path).close();
  expect_input_error([&] { load_checkpoint(empty_path); }, {empty_path});
}

TEST(CheckpointErrors, TruncatedFile) {
  TempDir dir;
  const std::string path = write_valid(dir);
  const uintmax_t size = fs::file_size(path);
  ASSERT_GT(size, 30000u);  // the data makes up most of the file
  for (const uintmax_t cut : {size / 2, size / 4, 3 * size / 4, size - 1, uintmax_t{600}, uintmax_t{8}}) {
    const std::string copy = dir.file("cut_" + std::to_string(cut) + ".h5");
    fs::copy_file(path, copy);
    fs::resize_file(copy, cut);
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(size));
    expect_input_error([&] { load_checkpoint(copy); }, {copy});
    EXPECT_EQ(open_hdf5_objects(), 0);
  }
}

TEST(CheckpointErrors, Hdf5FileThatIsNotACheckpoint) {
  TempDir dir;
  const std::string path = dir.file("other.h5");
  {
    h5::silence_errors();
    h5::File file = h5::take<h5::File>(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), path,
                                       "", "create");
  }
  expect_load_error(path, {"not an nsa-train checkpoint"});
}

TEST(CheckpointErrors, WrongFormatName) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_root(path, [&](hid_t root) {
    h5::write_string_attribute(root, "format", "something-else", h5::StringStorage::variable, path, "/");
  });
  expect_load_error(path, {"format is 'something-else'", "nsa-train-checkpoint"});
}

TEST(CheckpointErrors, MissingFormatVersion) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_root(path, [](hid_t root) { ASSERT_GE(H5Adelete(root, "format_version"), 0); });
  expect_load_error(path, {"/: missing attribute 'format_version'"});
}

TEST(CheckpointErrors, UnsupportedFormatVersion) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_root(path, [&](hid_t root) {
    h5::write_int_attribute(root, "format_version", 3, H5T_STD_I32LE, path, "/");
  });
  expect_load_error(path, {"unsupported format_version 3", "newer"});
  edit_root(path, [&](hid_t root) {
    h5::write_int_attribute(root, "format_version", 0, H5T_STD_I64LE, path, "/");
  });
  expect_load_error(path, {"unsupported format_version 0"});
  edit_root(path, [&](hid_t root) {
    h5::write_string_attribute(root, "format_version", "1", h5::StringStorage::fixed, path, "/");
  });
  expect_load_error(path, {"attribute 'format_version': expected an integer"});
}

TEST(CheckpointErrors, UnknownDtype) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_dataset(path, "/params/blocks.0.attn.wq", [&](hid_t dataset) {
    h5::write_string_attribute(dataset, "dtype", "f16", h5::StringStorage::fixed, path, "wq");
  });
  expect_load_error(path, {path + ": /params/blocks.0.attn.wq: unsupported dtype 'f16'"});
}

TEST(CheckpointErrors, MissingDtype) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_dataset(path, "/optimizer/exp_avg/blocks.0.attn.wq",
               [](hid_t dataset) { ASSERT_GE(H5Adelete(dataset, "dtype"), 0); });
  expect_load_error(path, {"/optimizer/exp_avg/blocks.0.attn.wq: missing attribute 'dtype'"});
}

TEST(CheckpointErrors, DtypeDisagreesWithStoredType) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_dataset(path, "/params/blocks.0.attn.wk", [&](hid_t dataset) {
    h5::write_string_attribute(dataset, "dtype", "bf16", h5::StringStorage::fixed, path, "wk");
  });
  expect_load_error(path,
                    {"/params/blocks.0.attn.wk: dtype 'bf16' but the data is stored as float of 4 bytes"});
}

TEST(CheckpointErrors, MissingGroupAndStrayObjects) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_file(path, [](hid_t file) { ASSERT_GE(H5Ldelete(file, "/state", H5P_DEFAULT), 0); });
  expect_load_error(path, {"missing group /state"});

  const std::string path2 = write_valid(dir, "b.h5");
  edit_file(path2, [&](hid_t file) {  // a named datatype where a tensor is expected
    h5::Datatype type = h5::take<h5::Datatype>(H5Tcopy(H5T_NATIVE_INT), path2, "", "copy");
    ASSERT_GE(H5Tcommit2(file, "/params/odd", type.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  expect_load_error(path2, {"/params/odd: expected a dataset or a group"});
}

TEST(CheckpointErrors, RankBeyondTheLimit) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_file(path, [&](hid_t file) {
    const std::vector<hsize_t> dims(kMaxDims + 1, 1);
    h5::Dataspace space =
        h5::take<h5::Dataspace>(H5Screate_simple(kMaxDims + 1, dims.data(), nullptr), path, "", "space");
    h5::Dataset dataset = h5::take<h5::Dataset>(
        H5Dcreate2(file, "/params/deep", H5T_IEEE_F32LE, space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
        path, "", "create");
    h5::write_string_attribute(dataset.id(), "dtype", "f32", h5::StringStorage::fixed, path, "deep");
  });
  expect_load_error(path, {"/params/deep: rank 9 exceeds the maximum of 8"});
}

TEST(CheckpointErrors, NegativeStepAndNonStringConfig) {
  TempDir dir;
  const std::string path = write_valid(dir);
  edit_root(path, [&](hid_t root) { h5::write_int_attribute(root, "step", -5, H5T_STD_I64LE, path, "/"); });
  expect_load_error(path, {"negative step -5"});
  const std::string path2 = write_valid(dir, "b.h5");
  edit_root(path2,
            [&](hid_t root) { h5::write_int_attribute(root, "config", 3, H5T_STD_I64LE, path2, "/"); });
  expect_load_error(path2, {"/: attribute 'config': expected a string"});
}

}  // namespace
}  // namespace nsa::test
