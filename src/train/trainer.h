// The training loop of one process: model, optimizer, data, evaluation, logging and checkpoints, driven by
// a resolved Config. One step reads top to bottom in Trainer::train_step: micro-batches → forward → backward
// (accumulating gradients) → global-norm clip → AdamW → (at intervals) log, evaluate, checkpoint.
// Nothing in a step waits for the device except the log/eval/checkpoint points and, for MoE, the routing.
//
// Distributed (docs/distributed.md): one Trainer per process. TrainOptions.groups gives the DP × TP process
// groups (none: one process). Each DP rank reads its own slice of every global batch; the TP ranks of a
// replica read the same batch and hold their shards of the model; dist::DistributedOptimizer averages the
// gradients over DP and reduces the TP partial ones. World rank 0 prints, logs and writes checkpoints
// (whole tensors gathered from the TP group, so any TP size can resume them).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/device.h"
#include "core/random.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "nn/model_stats.h"
#include "nn/transformer.h"
#include "dist/distributed_optimizer.h"
#include "dist/layout.h"
#include "dist/tp_gather.h"
#include "train/metrics_log.h"

namespace nsa::train {

struct TrainOptions {
  bool resume = false;  // --resume: continue from the newest checkpoint in checkpoint.dir
  bool quiet = false;   // no stdout (tests)
  dist::ProcessGroups* groups = nullptr;  // the process's DP × TP groups; null: a single process
};

struct TrainSummary {
  int64_t start_step = 0, end_step = 0;
  int64_t tokens = 0;  // trained in this process
  double seconds = 0;
  double first_loss = 0, last_loss = 0;  // mean cross-entropy of the first and last logged steps
  std::optional<double> val_loss;        // last evaluation
  std::vector<std::pair<int64_t, double>> losses;  // (step, loss) at every log point
  std::string last_checkpoint;
  int64_t peak_memory_bytes = 0;
};

class Trainer {
 public:
  Trainer(Config config, TrainOptions options = {});
  ~Trainer();
  TrainSummary run();

  const nn::Transformer& model() const { return *model_; }
  const dist::Layout& layout() const { return groups_->layout; }
  Device device() const { return device_; }
  DType compute_dtype() const { return compute_; }
  // Mean validation cross-entropy over training.eval_batches micro-batches (the same batches every time).
  double evaluate();

 private:
  // One optimizer step; returns the device tensors (mean loss, grad norm) without reading them.
  std::pair<Tensor, Tensor> train_step(int64_t step);
  void save_checkpoint(int64_t step);
  void write_checkpoint(const std::string& path, int64_t step, dist::NamedTensors params,
                        dist::NamedTensors moments);
  void restore(const std::string& path);
  void say(const std::string& line);
  bool is_main() const { return groups_->layout.rank == 0; }
  std::string layout_report();

  Config config_;
  TrainOptions options_;
  Device device_;
  DType compute_;
  dist::ProcessGroups own_groups_;  // when options.groups is null
  dist::ProcessGroups* groups_;
  Generator init_gen_;
  std::unique_ptr<nn::Transformer> model_;
  std::unique_ptr<dist::DistributedOptimizer> optimizer_;
  std::unique_ptr<TokenDataset> train_data_, val_data_;
  std::unique_ptr<BatchSampler> train_sampler_, val_sampler_;
  std::unique_ptr<MetricsLog> log_;
  nn::ModelStats stats_;
  int64_t accum_steps_ = 1;
  int64_t start_step_ = 0;
  std::string last_checkpoint_;
};

// The device and compute dtype training.device / training.dtype ask for ("auto" resolved).
Device resolve_device(const std::string& name);
DType resolve_compute_dtype(const std::string& name, Device device);
// Dense bf16 tensor-core peak of a device in FLOP/s (0 when unknown, e.g. CPUs): the MFU denominator.
double peak_flops(Device device);

}  // namespace nsa::train
