// Tensor-parallel checkpoint sets (io/tp_checkpoint.h): split → merge gives the same state for dense, MoE
// and NSA models at several TP sizes (uneven vocabulary splits included); pieces hold exactly the sharding
// table's slices; sets survive a save/load; reshard 2 → 1 → 2 is the identity on files; and every kind of
// inconsistent set is refused with one line naming the piece and the tensor.
#include <gtest/gtest.h>

#include <filesystem>

#include "ckpt_test_util.h"
#include "dist/sharding.h"
#include "io/hdf5_attributes.h"
#include "io/hdf5_handle.h"
#include "io/io_test_util.h"
#include "io/tp_checkpoint.h"

namespace nsa::test {
namespace {

void check_round_trip(const Config& config, int tp) {
  SCOPED_TRACE(str("tp ", tp));
  const CheckpointState whole = model_state(config);
  const std::vector<CheckpointState> pieces = split_tp_checkpoint(whole, config, tp);
  ASSERT_EQ(pieces.size(), static_cast<size_t>(tp));
  // Every piece holds what the table says: the slice bounds of split tensors, owned ones on their owner.
  for (int r = 0; r < tp; ++r) {
    ASSERT_TRUE(pieces[r].tp.has_value());
    EXPECT_EQ(pieces[r].tp->rank, r);
    EXPECT_EQ(pieces[r].tp->size, tp);
    EXPECT_EQ(pieces[r].counters, whole.counters);
    for (const auto& [name, full] : whole.params) {
      const dist::TpShard shard = dist::tp_shard(name, config, tp);
      const Tensor* held = nullptr;
      for (const auto& [n, t] : pieces[r].params) {
        if (n == name) held = &t;
      }
      if (shard.kind == dist::TpShard::Kind::owned && shard.owner != r) {
        EXPECT_EQ(held, nullptr) << name << " on rank " << r;
        continue;
      }
      ASSERT_NE(held, nullptr) << name << " missing on rank " << r;
      if (shard.kind == dist::TpShard::Kind::split) {
        const int64_t n = full.size(shard.dim);
        const int64_t begin = dist::shard_begin(n, r, tp), size = dist::shard_size(n, r, tp);
        EXPECT_EQ(held->size(shard.dim), size) << name;
        EXPECT_TRUE(equal_values(*held, narrow(full, shard.dim, begin, size))) << name;
        EXPECT_EQ(pieces[r].tp->param_slices.at(name), (TensorSlice{shard.dim, begin, n})) << name;
        EXPECT_TRUE(pieces[r].tp->optimizer_slices.count("exp_avg/" + name)) << name;
      } else {
        EXPECT_TRUE(equal_values(*held, full)) << name;
        EXPECT_FALSE(pieces[r].tp->param_slices.count(name)) << name;
      }
    }
  }
  const CheckpointState merged = merge_tp_checkpoint(pieces, config, "set");
  expect_same_state(merged, whole);
}

TEST(TpCheckpoint, SplitMergeDense) {
  for (const bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    const Config config = dense_config(tied, 509);  // 509 rows: 254 + 255 at tp 2, 127/127/127/128 at tp 4
    for (const int tp : {1, 2}) check_round_trip(config, tp);
  }
}

TEST(TpCheckpoint, SplitMergeMoe) {
  for (const int tp : {2, 4}) check_round_trip(moe_config(), tp);
  check_round_trip(moe_config(/*shared=*/1, /*first_k_dense=*/1), 2);
}

TEST(TpCheckpoint, SplitMergeNsa) { check_round_trip(nsa_config(), 2); }

TEST(TpCheckpoint, PiecePaths) {
  EXPECT_EQ(tp_piece_path("runs/x/step_100", 1, 4), "runs/x/step_100.tp1-of-4.h5");
  const auto p = parse_tp_piece_path("runs/x/step_100.tp12-of-16.h5");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->stem, "runs/x/step_100");
  EXPECT_EQ(p->rank, 12);
  EXPECT_EQ(p->size, 16);
  for (const char* bad : {"x.tp2-of-2.h5", "x.tp1-of-0.h5", "x.tp01-of-2.h5", "x.tp1-of-2.h5x", "x.h5", ".tp0-of-1.h5",
                          "x.tp-of-2.h5", "x.tpa-of-2.h5"}) {
    EXPECT_FALSE(parse_tp_piece_path(bad).has_value()) << bad;
  }
}

// Files: a set saved and loaded back equals the pieces; reshard 2 -> 1 -> 2 gives the same pieces; 2 -> 4.
TEST(TpCheckpoint, SetFilesAndReshard) {
  TempDir dir;
  const Config config = dense_config(false, 509);
  const CheckpointState whole = model_state(config);
  const std::string stem = dir.file("step_42");
  const std::vector<CheckpointState> pieces = split_tp_checkpoint(whole, config, 2);
  save_tp_checkpoint(stem, pieces);
  EXPECT_EQ(dir.names(), (std::vector<std::string>{"step_42.tp0-of-2.h5", "step_42.tp1-of-2.h5"}));
  const std::vector<CheckpointState> loaded = load_tp_checkpoint(stem, 2);
  for (int r = 0; r < 2; ++r) expect_same_state(loaded[r], pieces[r]);

  // Whole from a member's path and from the stem (with and without .h5).
  for (const std::string& name : {tp_piece_path(stem, 1, 2), stem, stem + ".h5"}) {
    const WholeCheckpoint w = load_whole_checkpoint(name);
    EXPECT_EQ(w.source_tp, 2) << name;
    EXPECT_EQ(w.files.size(), 2u) << name;
    expect_same_state(w.state, whole);
  }

  // 2 -> 1 (a whole file) -> 2 again: the same pieces.
  const std::string merged_path = dir.file("merged.h5");
  save_checkpoint(merged_path, load_whole_checkpoint(stem).state);
  const WholeCheckpoint merged = load_whole_checkpoint(merged_path);
  EXPECT_EQ(merged.source_tp, 1);
  const std::string again = dir.file("again");
  save_tp_checkpoint(again, split_tp_checkpoint(merged.state, merged.config, 2));
  const std::vector<CheckpointState> again_pieces = load_tp_checkpoint(again, 2);
  for (int r = 0; r < 2; ++r) expect_same_state(again_pieces[r], pieces[r]);

  // 2 -> 4 -> whole.
  const std::string four = dir.file("four");
  save_tp_checkpoint(four, split_tp_checkpoint(load_whole_checkpoint(stem).state, config, 4));
  const WholeCheckpoint from_four = load_whole_checkpoint(tp_piece_path(four, 3, 4));
  EXPECT_EQ(from_four.source_tp, 4);
  expect_same_state(from_four.state, whole);
}

TEST(TpCheckpoint, Bf16PiecesKeepTheirDtype) {
  TempDir dir;
  const Config config = dense_config();
  save_tp_checkpoint(dir.file("b"), split_tp_checkpoint(model_state(config), config, 2), DType::bf16);
  const WholeCheckpoint w = load_whole_checkpoint(dir.file("b"));
  EXPECT_EQ(w.state.params_stored, DType::bf16);
  EXPECT_EQ(load_checkpoint(tp_piece_path(dir.file("b"), 0, 2)).params_stored, DType::bf16);
}

// ------------------------------------------------------------------------------------------------ errors

std::vector<CheckpointState> dense_pieces(const Config& config, int tp = 2) {
  return split_tp_checkpoint(model_state(config), config, tp);
}

Tensor& param(CheckpointState& s, const std::string& name) {
  for (auto& [n, t] : s.params) {
    if (n == name) return t;
  }
  throw std::runtime_error("no " + name);
}

TEST(TpCheckpoint, MergeRefusesInconsistentPieces) {
  const Config config = dense_config(false);
  {
    auto p = dense_pieces(config);
    p[1].step = 41;
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); }, {"set (rank 1 of 2)", "step 41", "step 42"});
  }
  {
    auto p = dense_pieces(config);
    p[1].counters[3].second = 7;
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); }, {"rank 1 of 2", "counters"});
  }
  {
    auto p = dense_pieces(config);
    std::swap(p[0], p[1]);
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); }, {"piece 0 says it is rank 1 of 2"});
  }
  {
    auto p = dense_pieces(config);
    p.pop_back();
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); }, {"piece 0 says it is rank 0 of 2", "of 1"});
  }
  {  // a replicated norm that differs between ranks
    auto p = dense_pieces(config);
    param(p[1], "final_norm.weight") = full({16}, 2.0);
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                       {"/params/final_norm.weight", "replicated", "rank 1", "differs from rank 0"});
  }
  {  // a split tensor missing from one rank
    auto p = dense_pieces(config);
    p[1].params.erase(p[1].params.begin());  // embed.weight
    p[1].tp->param_slices.erase("embed.weight");
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                       {"/params/embed.weight", "missing from rank 1"});
  }
  {  // slices that do not tile: rank 1 says it starts elsewhere
    auto p = dense_pieces(config);
    p[1].tp->param_slices["embed.weight"].offset = 250;
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                       {"set (rank 1 of 2): /params/embed.weight", "starts at 250, expected 254"});
  }
  {  // a slice along the wrong dimension
    auto p = dense_pieces(config);
    p[0].tp->param_slices["blocks.0.attn.wo.weight"].dim = 0;
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                       {"blocks.0.attn.wo.weight", "sliced along dim 0", "splits dim 1"});
  }
  {  // a split tensor stored whole
    auto p = dense_pieces(config);
    p[0].tp->param_slices.erase("blocks.1.mlp.w_up.weight");
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                       {"rank 0 of 2", "blocks.1.mlp.w_up.weight", "stored whole"});
  }
  {  // a replicated tensor stored as a slice
    auto p = dense_pieces(config);
    p[0].tp->param_slices["final_norm.weight"] = TensorSlice{0, 0, 32};
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                       {"final_norm.weight", "stored as a slice", "replicated"});
  }
  {  // an optimizer entry that names no parameter of the model
    auto p = dense_pieces(config);
    for (auto& piece : p) piece.optimizer.emplace_back("exp_avg/blocks.9.attn.wq.weight", zeros({2}));
    expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                       {"/optimizer/exp_avg/blocks.9.attn.wq.weight", "no sharding rule"});
  }
}

TEST(TpCheckpoint, MergeRefusesExpertsOnTheWrongRank) {
  const Config config = moe_config();
  auto p = split_tp_checkpoint(model_state(config), config, 2);
  // Move expert 0's gate weight (owned by rank 0) to rank 1 as well.
  for (const auto& [n, t] : p[0].params) {
    if (n == "blocks.0.moe.experts.0.w_gate.weight") p[1].params.emplace_back(n, t);
  }
  expect_input_error([&] { merge_tp_checkpoint(p, config, "set"); },
                     {"blocks.0.moe.experts.0.w_gate.weight", "expected on rank 0 only", "found on 2 ranks"});
}

TEST(TpCheckpoint, SplitRefusesImpossibleSizes) {
  const Config config = dense_config();  // 4 KV heads
  expect_input_error([&] { split_tp_checkpoint(model_state(config), config, 3); },
                     {"parallel.tensor_parallel_size", "3 does not divide model.n_kv_heads = 4"});
}

TEST(TpCheckpoint, SetFileErrors) {
  TempDir dir;
  const Config config = dense_config();
  const std::string stem = dir.file("s");
  save_tp_checkpoint(stem, dense_pieces(config));
  // A missing piece.
  std::filesystem::remove(tp_piece_path(stem, 1, 2));
  expect_input_error([&] { load_whole_checkpoint(tp_piece_path(stem, 0, 2)); },
                     {"s.tp1-of-2.h5: no such file", "rank 1 of the 2-piece set"});
  // A piece renamed to another rank.
  std::filesystem::copy_file(tp_piece_path(stem, 0, 2), tp_piece_path(stem, 1, 2));
  expect_input_error([&] { load_whole_checkpoint(stem); },
                     {"s.tp1-of-2.h5", "tp_rank 0 and tp_size 2", "the file name says rank 1 of 2"});
  // A whole checkpoint named like a piece.
  save_checkpoint(tp_piece_path(stem, 1, 2), model_state(config));
  expect_input_error([&] { load_whole_checkpoint(stem); }, {"s.tp1-of-2.h5", "a whole checkpoint (format_version 1)"});
  // A piece not named like one.
  save_checkpoint(dir.file("odd.h5"), dense_pieces(config)[1]);
  expect_input_error([&] { load_whole_checkpoint(dir.file("odd.h5")); },
                     {"odd.h5: rank 1 of a 2-piece tensor-parallel set", "cannot be found"});
  // Two sets under one stem; nothing under another.
  save_tp_checkpoint(dir.file("t"), dense_pieces(config, 1));
  save_tp_checkpoint(dir.file("t"), dense_pieces(config, 2));
  expect_input_error([&] { load_whole_checkpoint(dir.file("t")); }, {"several tensor-parallel sets (sizes 1, 2)"});
  expect_input_error([&] { load_whole_checkpoint(dir.file("none.h5")); }, {"none.h5: no such file"});
}

TEST(TpCheckpoint, DamagedPieceAttributes) {
  TempDir dir;
  const Config config = dense_config();
  save_tp_checkpoint(dir.file("s"), dense_pieces(config));
  const std::string path = tp_piece_path(dir.file("s"), 0, 2);
  auto edit = [&](const std::function<void(hid_t file)>& fn) {
    h5::silence_errors();
    h5::File f = h5::take<h5::File>(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), path, "", "open");
    fn(f.id());
    ASSERT_TRUE(f.close());
  };
  edit([&](hid_t f) {
    h5::Group root = h5::take<h5::Group>(H5Gopen2(f, "/", H5P_DEFAULT), path, "/", "open");
    h5::write_int_attribute(root.id(), "tp_rank", 5, H5T_STD_I64LE, path, "/");
  });
  expect_input_error([&] { load_checkpoint(path); }, {path + ": /: tp_rank 5 and tp_size 2 do not name"});
  edit([&](hid_t f) {
    h5::Group root = h5::take<h5::Group>(H5Gopen2(f, "/", H5P_DEFAULT), path, "/", "open");
    h5::write_int_attribute(root.id(), "tp_rank", 0, H5T_STD_I64LE, path, "/");
    h5::Dataset d = h5::take<h5::Dataset>(H5Dopen2(f, "/params/embed.weight", H5P_DEFAULT), path, "", "open");
    h5::write_int_attribute(d.id(), "tp_offset", 300, H5T_STD_I64LE, path, "/params/embed.weight");
  });
  expect_input_error([&] { load_checkpoint(path); },
                     {"/params/embed.weight: tp_dim 0, tp_offset 300, tp_full_size 509 do not fit the stored shape"});
  edit([&](hid_t f) {
    h5::Dataset d = h5::take<h5::Dataset>(H5Dopen2(f, "/params/embed.weight", H5P_DEFAULT), path, "", "open");
    h5::write_int_attribute(d.id(), "tp_offset", 0, H5T_STD_I64LE, path, "/params/embed.weight");
    H5Adelete(d.id(), "tp_full_size");
  });
  expect_input_error([&] { load_checkpoint(path); }, {"/params/embed.weight", "missing attribute 'tp_full_size'"});
}

}  // namespace
}  // namespace nsa::test
