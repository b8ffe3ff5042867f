// Checkpoint round trips (values bit-exact in f32, bf16 rounded exactly as to(t, bf16) rounds), the atomic
// save (a failed save leaves the previous checkpoint and no temp file), copy_into, and CUDA tensors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "io/checkpoint.h"
#include "io/hdf5_attributes.h"
#include "io/hdf5_handle.h"
#include "io/io_test_util.h"
#include "test_util.h"

namespace nsa::test {
namespace {

// Bitwise equality of two f32 tensors of equal shape (NaNs, -0.0 and denormals included).
void expect_same_bits(const Tensor& actual, const Tensor& expected, const std::string& name) {
  ASSERT_EQ(actual.shape(), expected.shape()) << name;
  const std::vector<float> a = to_vector<float>(actual), b = to_vector<float>(expected);
  ASSERT_EQ(a.size(), b.size()) << name;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << name << ": values differ";
}

// Special values that a lossy or converting path would change.
Tensor special_values() {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> v = {0.0f,
                                -0.0f,
                                inf,
                                -inf,
                                std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::denorm_min(),
                                1e-40f,
                                3.4e38f,
                                1.0f + 0x1p-23f};
  return from_vector<float>(v, {9});
}

CheckpointState make_state() {
  Generator gen(42);
  CheckpointState state;
  state.step = 1234;
  state.config_yaml =
      "model:\n  d_model: 128   # width\n  name: \"tiny: \xC3\xA9t\xC3\xA9\"\n\ntrain:\n  lr: 3.0e-4\n"
      "  schedule: [warmup, cosine]\n";
  state.params = {
      {"embed.weight", randn({5, 3}, DType::f32, Device::cpu(), &gen)},
      {"blocks.0.attn.wq", randn({2, 3, 4}, DType::f32, Device::cpu(), &gen)},
      {"blocks.0.norm.weight", randn({7}, DType::f32, Device::cpu(), &gen)},
      {"logit_scale", full({}, 2.5)},
      {"empty", zeros({0})},
      {"empty.3d", zeros({2, 0, 3})},
      {"special", special_values()},
  };
  state.optimizer = {
      {"exp_avg/embed.weight", randn({5, 3}, DType::f32, Device::cpu(), &gen)},
      {"exp_avg_sq/embed.weight", rand({5, 3}, DType::f32, Device::cpu(), &gen)},
      {"exp_avg/blocks.0.attn.wq", randn({2, 3, 4}, DType::f32, Device::cpu(), &gen)},
      {"exp_avg/logit_scale", full({}, -1.0)},
  };
  state.counters = {
      {"rng.seed", 1234567890123LL},
      {"rng.offset", 4096},
      {"data.epoch", 2},
      {"data.position", 0},
      {"optimizer.step", 1234},
      {"int64.max", std::numeric_limits<int64_t>::max()},
      {"int64.min", std::numeric_limits<int64_t>::min()},
  };
  return state;
}

void expect_entries(const std::vector<std::pair<std::string, Tensor>>& loaded,
                    const std::vector<std::pair<std::string, Tensor>>& expected) {
  ASSERT_EQ(loaded.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(loaded[i].first, expected[i].first) << "entry " << i;
    EXPECT_EQ(loaded[i].second.dtype(), DType::f32) << loaded[i].first;
    EXPECT_TRUE(loaded[i].second.device().is_cpu()) << loaded[i].first;
    EXPECT_TRUE(loaded[i].second.is_contiguous()) << loaded[i].first;
    expect_same_bits(loaded[i].second, expected[i].second, expected[i].first);
  }
}

TEST(Checkpoint, RoundTripF32IsExact) {
  TempDir dir;
  const CheckpointState state = make_state();
  const std::string path = dir.file("step_00001234.h5");
  save_checkpoint(path, state, DType::f32);
  EXPECT_EQ(dir.names(), std::vector<std::string>{"step_00001234.h5"});  // no temp file left behind

  const CheckpointState loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.step, 1234);
  EXPECT_EQ(loaded.config_yaml, state.config_yaml);
  expect_entries(loaded.params, state.params);  // saved order, rank 0/1/3, empty tensors, dotted names
  // Optimizer names with '/' live in nested groups: they come back depth first, group by group.
  expect_entries(loaded.optimizer,
                 {state.optimizer[0], state.optimizer[2], state.optimizer[3], state.optimizer[1]});
  EXPECT_EQ(loaded.counters, state.counters);
  EXPECT_EQ(open_hdf5_objects(), 0);
  EXPECT_EQ(loaded.params[3].second.dim(), 0);
  EXPECT_EQ(loaded.params[5].second.shape(), (Dims{2, 0, 3}));
}

TEST(Checkpoint, EmptyStateRoundTrips) {
  TempDir dir;
  CheckpointState state;
  state.step = 0;
  const std::string path = dir.file("empty.h5");
  save_checkpoint(path, state);
  const CheckpointState loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.step, 0);
  EXPECT_EQ(loaded.config_yaml, "");
  EXPECT_TRUE(loaded.params.empty());
  EXPECT_TRUE(loaded.optimizer.empty());
  EXPECT_TRUE(loaded.counters.empty());
}

TEST(Checkpoint, Bf16StorageRoundsLikeCast) {
  TempDir dir;
  Generator gen(7);
  CheckpointState state;
  state.step = 5;
  const Tensor weight = randn({33, 5}, DType::f32, Device::cpu(), &gen);
  const Tensor special = special_values();
  const Tensor moment = randn({33, 5}, DType::f32, Device::cpu(), &gen);
  state.params = {{"w", weight}, {"special", special}};
  state.optimizer = {{"exp_avg/w", moment}};
  const std::string path = dir.file("bf16.h5");
  save_checkpoint(path, state, DType::bf16);

  const CheckpointState loaded = load_checkpoint(path);
  ASSERT_EQ(loaded.params.size(), 2u);
  const Tensor expected = to(to(weight, DType::bf16), DType::f32);
  expect_same_bits(loaded.params[0].second, expected, "w");
  expect_same_bits(loaded.params[1].second, to(to(special, DType::bf16), DType::f32), "special");
  const double err = rel_error(loaded.params[0].second, weight);
  std::cout << "  bf16 storage: relative error vs f32 " << err << "\n";
  EXPECT_GT(err, 0.0);                                                // it was rounded...
  EXPECT_LT(err, 1.0 / 256);                                          // ...to bf16 (8 significant bits)
  expect_same_bits(loaded.optimizer[0].second, moment, "exp_avg/w");  // optimizer state stays f32

  // The file itself: uint16 bits of the rounded values, tagged dtype = "bf16"; f32 data tagged "f32".
  h5::silence_errors();
  h5::File file = h5::take<h5::File>(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path, "", "open");
  h5::Dataset w = h5::take<h5::Dataset>(H5Dopen2(file.id(), "/params/w", H5P_DEFAULT), path, "w", "open");
  EXPECT_EQ(h5::read_string_attribute(w.id(), "dtype", path, "w"), "bf16");
  h5::Datatype type = h5::take<h5::Datatype>(H5Dget_type(w.id()), path, "w", "type");
  EXPECT_EQ(H5Tget_class(type.id()), H5T_INTEGER);
  EXPECT_EQ(H5Tget_size(type.id()), 2u);
  std::vector<uint16_t> bits(33 * 5);
  ASSERT_GE(H5Dread(w.id(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits.data()), 0);
  const std::vector<float> values = to_vector<float>(weight);
  for (size_t i = 0; i < bits.size(); ++i) {
    ASSERT_EQ(bits[i], bf16::from_float(values[i])) << "element " << i;
  }
  h5::Dataset m =
      h5::take<h5::Dataset>(H5Dopen2(file.id(), "/optimizer/exp_avg/w", H5P_DEFAULT), path, "m", "open");
  EXPECT_EQ(h5::read_string_attribute(m.id(), "dtype", path, "m"), "f32");
}

TEST(Checkpoint, ConvertsInputDtypesAndLayouts) {
  TempDir dir;
  Generator gen(3);
  const Tensor as_bf16 = randn({4, 6}, DType::bf16, Device::cpu(), &gen);
  const Tensor as_f64 = randn({4, 6}, DType::f64, Device::cpu(), &gen);
  const Tensor base = randn({6, 4}, DType::f32, Device::cpu(), &gen);
  const Tensor transposed = transpose(base, 0, 1);  // non-contiguous view
  ASSERT_FALSE(transposed.is_contiguous());
  Tensor leaf = randn({3}, DType::f32, Device::cpu(), &gen);
  leaf.set_requires_grad(true);

  CheckpointState state;
  state.params = {{"bf16", as_bf16}, {"f64", as_f64}, {"transposed", transposed}, {"leaf", leaf}};
  const std::string path = dir.file("dtypes.h5");
  save_checkpoint(path, state, DType::f32);
  const CheckpointState loaded = load_checkpoint(path);
  ASSERT_EQ(loaded.params.size(), 4u);
  expect_same_bits(loaded.params[0].second, to(as_bf16, DType::f32), "bf16 widened exactly");
  expect_same_bits(loaded.params[1].second, to(as_f64, DType::f32), "f64 rounded to f32");
  expect_same_bits(loaded.params[2].second, contiguous(transposed), "transposed");
  expect_same_bits(loaded.params[3].second, leaf.alias(), "requires grad");
  EXPECT_FALSE(loaded.params[3].second.requires_grad());
}

TEST(Checkpoint, OverwriteReplacesTheFile) {
  TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  CheckpointState first;
  first.step = 1;
  first.params = {{"w", full({2}, 1.0)}};
  save_checkpoint(path, first);
  CheckpointState second;
  second.step = 2;
  second.params = {{"w", full({3}, 2.0)}, {"v", full({1}, 3.0)}};
  save_checkpoint(path, second);
  const CheckpointState loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.step, 2);
  expect_entries(loaded.params, second.params);
  EXPECT_EQ(dir.names(), std::vector<std::string>{"ckpt.h5"});
}

// A save that fails after the temp file was created (an undefined tensor, a duplicate name, a name HDF5
// cannot hold) leaves the previous checkpoint as it was and removes its temp file.
TEST(Checkpoint, FailedSaveKeepsThePreviousCheckpoint) {
  TempDir dir;
  const std::string path = dir.file("step_00000010.h5");
  const CheckpointState good = make_state();
  save_checkpoint(path, good);

  std::vector<CheckpointState> bad(4, make_state());
  bad[0].params.insert(bad[0].params.begin() + 2, {"undefined", Tensor()});
  bad[1].params.push_back({"embed.weight", full({1}, 0.0)});               // duplicate
  bad[2].optimizer.push_back({"exp_avg//x", full({1}, 0.0)});              // empty component
  bad[3].optimizer.push_back({"exp_avg/embed.weight/x", full({1}, 0.0)});  // a dataset cannot hold a child
  for (size_t i = 0; i < bad.size(); ++i) {
    bad[i].step = 20;
    try {
      save_checkpoint(path, bad[i]);
      ADD_FAILURE() << "bad state " << i << " was saved";
    } catch (const Error& e) {
      std::cout << "  bad state " << i << ": " << e.what() << "\n";
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "message does not name the file";
    }
    EXPECT_EQ(dir.names(), std::vector<std::string>{"step_00000010.h5"}) << "bad state " << i;
    EXPECT_EQ(open_hdf5_objects(), 0) << "bad state " << i;
  }
  const CheckpointState loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.step, good.step);
  expect_entries(loaded.params, good.params);
  EXPECT_EQ(loaded.counters, good.counters);
}

TEST(Checkpoint, SaveIntoMissingDirectoryFails) {
  TempDir dir;
  const std::string path = dir.file("missing/step_00000001.h5");
  expect_input_error([&] { save_checkpoint(path, make_state()); }, {path, "the directory", "does not exist"});
  EXPECT_TRUE(dir.names().empty());
}

TEST(Checkpoint, RefusesBadArguments) {
  TempDir dir;
  CheckpointState state = make_state();
  EXPECT_THROW(save_checkpoint(dir.file("a.h5"), state, DType::f64), Error);
  state.params.push_back({"ids", arange(4)});  // integer tensors are not parameters
  EXPECT_THROW(save_checkpoint(dir.file("a.h5"), state), Error);
  state = make_state();
  state.counters.push_back({"rng.seed", 1});  // duplicate counter
  EXPECT_THROW(save_checkpoint(dir.file("a.h5"), state), Error);
  state = make_state();
  state.step = -1;
  EXPECT_THROW(save_checkpoint(dir.file("a.h5"), state), Error);
  EXPECT_TRUE(dir.names().empty());
}

TEST(Checkpoint, CopyIntoChecksShapeAndConverts) {
  Generator gen(11);
  const Tensor src = randn({2, 3}, DType::f32, Device::cpu(), &gen);
  Tensor param = zeros({2, 3});
  param.set_requires_grad(true);  // a parameter: the copy must not need a NoGradGuard from the caller
  copy_into(param, src, "ckpt.h5: /params/w");
  expect_same_bits(param.alias(), src, "f32 copy");

  const Tensor half = zeros({2, 3}, DType::bf16);
  copy_into(half, src, "ckpt.h5: /params/w");
  EXPECT_TRUE(equal_values(half, to(src, DType::bf16)));

  expect_input_error(
      [&] {
        copy_into(param, randn({3, 2}), "ckpt.h5: /params/w");
      },
      {"ckpt.h5: /params/w: expected shape [2, 3], got [3, 2]"});
  expect_same_bits(param.alias(), src, "unchanged after a refused copy");
}

TEST(CheckpointCuda, SavesAndRestoresDeviceTensors) {
  NSA_REQUIRE_GPU();
  TempDir dir;
  Generator gen(21);
  const Tensor w_cpu = randn({31, 7}, DType::f32, Device::cpu(), &gen);
  const Tensor b_cpu = randn({7}, DType::bf16, Device::cpu(), &gen);
  const Tensor m_cpu = randn({31, 7}, DType::f32, Device::cpu(), &gen);
  CheckpointState state;
  state.step = 9;
  state.params = {{"w", to(w_cpu, Device::cuda())}, {"b", to(b_cpu, Device::cuda())}};
  state.optimizer = {{"exp_avg/w", to(m_cpu, Device::cuda())}};
  const std::string path = dir.file("cuda.h5");
  save_checkpoint(path, state, DType::bf16);

  const CheckpointState loaded = load_checkpoint(path);
  ASSERT_EQ(loaded.params.size(), 2u);
  expect_same_bits(loaded.params[0].second, to(to(w_cpu, DType::bf16), DType::f32), "w (rounded on the GPU)");
  expect_same_bits(loaded.params[1].second, to(b_cpu, DType::f32), "b");
  expect_same_bits(loaded.optimizer[0].second, m_cpu, "exp_avg/w");

  const Tensor target = zeros({31, 7}, DType::bf16, Device::cuda());
  copy_into(target, loaded.params[0].second, "w");
  EXPECT_TRUE(equal_values(to(target, Device::cpu()), to(w_cpu, DType::bf16)));
}

}  // namespace
}  // namespace nsa::test
