#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/allocator.h"
#include "core/cuda_api.h"
#include "dist/sharding.h"
#include "dist/tp_gather.h"
#include "io/checkpoint.h"
#include "io/checkpoint_dir.h"
#include "ops/ops.h"
#include "optim/optim.h"

namespace nsa::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void make_dir(const std::string& dir, const char* key) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(str(key, ": cannot create directory '", dir, "': ", ec.message()));
}

// "exp_avg/<param>" -> "<param>": optimizer moments are sharded like their parameter.
std::string state_param_name(const std::string& entry) { return entry.substr(entry.find('/') + 1); }

}  // namespace

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") {
    if (!cuda::available()) {
      throw InputError(cuda::built_with_cuda()
                           ? "training.device: 'cuda' asked for, but no CUDA device is visible"
                           : "training.device: 'cuda' asked for, but this build has no CUDA backend");
    }
    return Device::cuda(cuda::current_device());
  }
  return cuda::available() ? Device::cuda(cuda::current_device()) : Device::cpu();  // auto
}

DType resolve_compute_dtype(const std::string& name, Device device) {
  if (name == "f32") return DType::f32;
  if (name == "bf16") return DType::bf16;
  return device.is_cuda() ? DType::bf16 : DType::f32;
}

double peak_flops(Device device) {
  if (!device.is_cuda()) return 0.0;
  const std::string name = cuda::device_name(device.index);
  // Dense bf16 tensor-core peaks from the vendor datasheets (SXM parts).
  if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos) return 989.4e12;
  if (name.find("A100") != std::string::npos) return 312e12;
  return 0.0;
}

Trainer::Trainer(Config config, TrainOptions options)
    : config_(std::move(config)),
      options_(options),
      device_(resolve_device(config_.training.device)),
      compute_(resolve_compute_dtype(config_.training.dtype, device_)),
      groups_(options.groups),
      init_gen_(config_.seed) {
  const TrainingConfig& tc = config_.training;
  if (!groups_) {
    own_groups_ = dist::make_single_process_groups();
    groups_ = &own_groups_;
  }
  const dist::Layout& layout = groups_->layout;
  const std::string source = config_.source.empty() ? "config" : config_.source;
  if (layout.tp_size != config_.parallel.tensor_parallel_size) {
    throw InputError(str(source, ": parallel.tensor_parallel_size: ", config_.parallel.tensor_parallel_size,
                         " does not match the job's TP size ", layout.tp_size, " (world size ", layout.world_size,
                         ")"));
  }
  dist::validate_tp(config_, layout.tp_size);
  if (!is_main()) options_.quiet = true;  // world rank 0 speaks for the job
  // Each DP rank runs global / dp sequences per step, in micro-batches.
  const int64_t per_rank = tc.micro_batch_size * layout.dp_size;
  if (tc.global_batch_size % per_rank != 0) {
    throw InputError(str(source, ": training.global_batch_size: ", tc.global_batch_size,
                         " must be a multiple of training.micro_batch_size × data-parallel size = ",
                         tc.micro_batch_size, " × ", layout.dp_size));
  }
  accum_steps_ = tc.global_batch_size / per_rank;

  // Data first: a bad shard should fail before minutes of model init.
  train_data_ = std::make_unique<TokenDataset>(
      TokenDataset::open(config_.data.train, config_.model.vocab_size, "data.train"));
  // The TP ranks of a replica read the same batch: the sampler's ranks are the DP ranks.
  train_sampler_ = std::make_unique<BatchSampler>(*train_data_, tc.seq_len, tc.micro_batch_size, config_.seed,
                                                  layout.dp_rank, layout.dp_size, /*shuffle=*/true);
  if (!config_.data.val.empty() && tc.eval_interval > 0) {
    val_data_ = std::make_unique<TokenDataset>(
        TokenDataset::open(config_.data.val, config_.model.vocab_size, "data.val"));
    val_sampler_ = std::make_unique<BatchSampler>(*val_data_, tc.seq_len, tc.micro_batch_size, config_.seed, 0,
                                                  1, /*shuffle=*/false);
  }

  // Directories only once the data is known to be good, so a bad glob leaves nothing behind.
  if (is_main()) {
    make_dir(config_.logging.dir, "logging.dir");
    if (config_.checkpoint.interval > 0 || config_.checkpoint.resume == "auto" || options_.resume) {
      make_dir(config_.checkpoint.dir, "checkpoint.dir");
    }
  }

  // Every rank draws the whole model's initial weights from the same seed and keeps its TP shard.
  nn::InitContext ctx{device_, DType::f32, &init_gen_, config_.model.init_std,
                      nn::TpGroup{layout.tp_rank, layout.tp_size, groups_->tp.get()}};
  model_ = std::make_unique<nn::Transformer>(ctx, config_);
  std::vector<dist::DistParam> params;
  for (const nn::NamedParam& p : model_->named_parameters()) {
    const dist::TpShard shard = dist::tp_shard(p.name, config_, layout.tp_size);
    params.push_back({p.name, p.tensor, uses_weight_decay(p.name, config_.optimizer.no_decay), shard.partial_grad,
                      shard.kind == dist::TpShard::Kind::replicated});
  }
  optimizer_ = std::make_unique<dist::DistributedOptimizer>(
      std::move(params), config_.optimizer, *groups_,
      dist::DistOptions{config_.parallel.zero1, config_.parallel.bucket_mb});
  stats_ = nn::model_stats(config_);

  std::optional<std::string> resume_from;
  if (options_.resume || config_.checkpoint.resume == "auto") {
    resume_from = latest_checkpoint(config_.checkpoint.dir);
    if (!resume_from) say(str("resume: no checkpoint in '", config_.checkpoint.dir, "', starting from step 0"));
  }
  if (resume_from) restore(*resume_from);

  if (is_main()) {
    log_ = std::make_unique<MetricsLog>(config_.logging.dir, /*append=*/start_step_ > 0,
                                        !options_.quiet && (config_.logging.progress == "on" ||
                                                            (config_.logging.progress == "auto" && isatty(1))));
    std::ofstream(config_.logging.dir + "/config.yaml") << to_yaml(config_);
  }
}

Trainer::~Trainer() = default;

void Trainer::say(const std::string& line) {
  if (options_.quiet) return;
  if (log_) {
    log_->print(line);
  } else {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}

std::string Trainer::layout_report() {
  const dist::Layout& layout = groups_->layout;
  if (layout.world_size == 1) return "layout: 1 process";
  // Every rank contributes (local rank, device index); rank 0 prints the table.
  Tensor mine = from_vector<int64_t>({layout.local_rank, device_.is_cuda() ? device_.index : -1}, {2}, DType::i64,
                                     device_);
  Tensor all = empty({2 * static_cast<int64_t>(layout.world_size)}, DType::i64, device_);
  groups_->world->all_gather(mine, all);
  const std::vector<int64_t> v = to_vector<int64_t>(all);
  std::string out = str("layout: ", layout.world_size, " processes = DP ", layout.dp_size, " x TP ", layout.tp_size,
                        " (backend ", groups_->world->backend(), config_.parallel.zero1 ? ", ZeRO-1" : "", ")");
  for (int r = 0; r < layout.world_size; ++r) {
    const dist::Layout l = dist::make_layout(layout.world_size, r, layout.tp_size);
    out += str("\n  rank ", r, ": dp ", l.dp_rank, " tp ", l.tp_rank, " | local rank ", v[2 * r], " | ",
               v[2 * r + 1] >= 0 ? str("cuda:", v[2 * r + 1]) : std::string("cpu"));
  }
  return out;
}

std::pair<Tensor, Tensor> Trainer::train_step(int64_t step) {
  const TrainingConfig& tc = config_.training;
  const double lr = learning_rate(config_.schedule, config_.optimizer.lr, step, tc.max_steps);
  Tensor loss_sum;
  Batch batch;
  for (int64_t micro = 0; micro < accum_steps_; ++micro) {
    optimizer_->prepare_backward(/*last=*/micro + 1 == accum_steps_);
    train_sampler_->next(batch);
    const Dims shape{batch.batch, batch.seq_len};
    const Tensor ids = from_vector<int32_t>(batch.inputs, shape, DType::i32, device_);
    const Tensor targets = from_vector<int32_t>(batch.targets, shape, DType::i32, device_);
    nn::LossOutput out = model_->loss(ids, targets, compute_);
    // Gradients of the mean over the whole global batch: each micro-batch's loss is 1/accum of it.
    backward(accum_steps_ > 1 ? mul_scalar(out.loss, 1.0 / static_cast<double>(accum_steps_)) : out.loss);
    const Tensor ce = detach(out.ce);
    loss_sum = loss_sum.defined() ? add(loss_sum, ce) : ce;
  }
  optimizer_->finish_backward();
  const Tensor norm = optimizer_->grad_norm();
  optimizer_->step(lr, clip_coefficient(norm, config_.optimizer.grad_clip));
  optimizer_->zero_grad();
  return {mul_scalar(loss_sum, 1.0 / static_cast<double>(accum_steps_)), norm};
}

double Trainer::evaluate() {
  NSA_CHECK(val_sampler_ != nullptr, "[trainer] no validation data (data.val)");
  autograd::NoGradGuard no_grad;
  val_sampler_->reset();
  Tensor total;
  Batch batch;
  for (int64_t i = 0; i < config_.training.eval_batches; ++i) {
    val_sampler_->next(batch);
    const Dims shape{batch.batch, batch.seq_len};
    const Tensor ids = from_vector<int32_t>(batch.inputs, shape, DType::i32, device_);
    const Tensor targets = from_vector<int32_t>(batch.targets, shape, DType::i32, device_);
    const Tensor ce = model_->loss(ids, targets, compute_).ce;
    total = total.defined() ? add(total, ce) : ce;
  }
  return item(total) / static_cast<double>(config_.training.eval_batches);
}

void Trainer::save_checkpoint(int64_t step) {
  // Collective: the optimizer state is gathered over DP (ZeRO-1), then replica 0's TP group gathers whole
  // tensors, world rank 0 writes, and everyone waits for the file before going on.
  const dist::Layout& layout = groups_->layout;
  dist::NamedTensors params;
  for (const nn::NamedParam& p : model_->named_parameters()) params.emplace_back(p.name, p.tensor);
  dist::NamedTensors moments = optimizer_->state();
  const std::string path = checkpoint_path(config_.checkpoint.dir, step);
  if (layout.dp_rank == 0) {
    params = dist::gather_tp(params, config_, *groups_->tp);
    moments = dist::gather_tp(moments, config_, *groups_->tp, state_param_name);
  }
  if (is_main()) {
    write_checkpoint(path, step, std::move(params), std::move(moments));
    prune_checkpoints(config_.checkpoint.dir, config_.checkpoint.keep);
  }
  groups_->world->barrier();
  last_checkpoint_ = path;
}

void Trainer::write_checkpoint(const std::string& path, int64_t step, dist::NamedTensors params,
                               dist::NamedTensors moments) {
  CheckpointState state;
  state.step = step;
  state.config_yaml = to_yaml(config_);
  state.params = std::move(params);
  state.optimizer = std::move(moments);
  const DataCursor cursor = train_sampler_->cursor();
  state.counters = {{"rng.seed", static_cast<int64_t>(init_gen_.seed())},
                    {"rng.offset", static_cast<int64_t>(init_gen_.offset())},
                    {"data.epoch", static_cast<int64_t>(cursor.epoch)},
                    {"data.position", static_cast<int64_t>(cursor.position)},
                    {"optimizer.step", optimizer_->step_count()}};
  nsa::save_checkpoint(path, state, config_.checkpoint.dtype == "bf16" ? DType::bf16 : DType::f32);
}

void Trainer::restore(const std::string& path) {
  const CheckpointState state = load_checkpoint(path);
  auto counter = [&](const std::string& name) -> int64_t {
    for (const auto& [k, v] : state.counters) {
      if (k == name) return v;
    }
    throw InputError(str(path, ": /state: missing counter '", name, "'"));
  };
  const dist::Layout& layout = groups_->layout;
  auto find = [](const dist::NamedTensors& list, const std::string& name) -> const Tensor* {
    for (const auto& [k, t] : list) {
      if (k == name) return &t;
    }
    return nullptr;
  };
  // The checkpoint holds whole tensors of the unsharded model: each rank keeps its TP part. Name one
  // tensor that is on one side only, so the message says which part of the model differs.
  const std::vector<nn::NamedParam> params = model_->named_parameters();
  for (const nn::NamedParam& p : params) {
    if (!find(state.params, p.name)) {
      throw InputError(str(path, ": /params: the checkpoint lacks the model's '", p.name,
                           "' (a checkpoint of a different model?)"));
    }
  }
  for (const auto& [name, t] : state.params) {
    bool in_model = false;
    for (const nn::NamedParam& p : params) in_model = in_model || p.name == name;
    if (!in_model && layout.tp_size > 1) {
      try {  // another TP rank's expert
        const dist::TpShard shard = dist::tp_shard(name, config_, layout.tp_size);
        in_model = shard.kind == dist::TpShard::Kind::owned && shard.owner != layout.tp_rank;
      } catch (const InputError&) {
      }
    }
    if (!in_model) {
      throw InputError(str(path, ": /params: the model has no '", name, "' (a checkpoint of a different model?)"));
    }
  }
  auto local_part = [&](const std::string& param, const Tensor& whole) {
    return dist::tp_local_part(whole, dist::tp_shard(param, config_, layout.tp_size), layout.tp_rank,
                               layout.tp_size);
  };
  {
    autograd::NoGradGuard no_grad;
    for (const nn::NamedParam& p : params) {
      copy_into(p.tensor, local_part(p.name, *find(state.params, p.name)), str(path, ": /params/", p.name));
    }
  }
  // Moments of parameters this rank holds, cut like them (load_state reports missing or extra entries).
  dist::NamedTensors moments;
  for (const auto& [name, t] : state.optimizer) {
    const std::string param = state_param_name(name);
    bool local = false;
    for (const nn::NamedParam& p : params) local = local || p.name == param;
    if (local) {
      moments.emplace_back(name, local_part(param, t));
    } else if (!find(state.params, param)) {
      moments.emplace_back(name, t);  // not a parameter at all: let load_state name it
    }
  }
  optimizer_->load_state(moments, counter("optimizer.step"), path);
  init_gen_.set_state(static_cast<uint64_t>(counter("rng.seed")), static_cast<uint64_t>(counter("rng.offset")));
  train_sampler_->set_cursor({static_cast<uint64_t>(counter("data.epoch")),
                              static_cast<uint64_t>(counter("data.position"))});
  start_step_ = state.step;
  last_checkpoint_ = path;
  say(str("resumed from ", path, " at step ", start_step_));
}

TrainSummary Trainer::run() {
  const TrainingConfig& tc = config_.training;
  const int64_t tokens_per_step = tc.global_batch_size * tc.seq_len;
  const double peak = peak_flops(device_);
  TrainSummary summary;
  summary.start_step = start_step_;

  say(str("nsa-train: ", config_.source.empty() ? "(defaults)" : config_.source, " | device ", device_.str(),
          " | compute ", dtype_name(compute_), " | attention ", config_.attention.type));
  say(str("model: ", format_count(static_cast<double>(stats_.params)), " parameters (",
          format_count(static_cast<double>(stats_.active_params)), " active, ",
          format_count(static_cast<double>(stats_.embedding_params)), " embedding), ",
          fmt("%.3g", stats_.train_flops_per_token), " training FLOPs/token"));
  say(str("data: ", train_data_->total_tokens(), " train tokens in ", train_data_->shards().size(),
          " shards; batch ", tc.global_batch_size, " x ", tc.seq_len, " = ", tokens_per_step,
          " tokens/step (", accum_steps_, " micro-batches of ", tc.micro_batch_size,
          groups_->layout.dp_size > 1 ? str(" on each of ", groups_->layout.dp_size, " DP ranks") : std::string(),
          ")"));
  const std::string layout_lines = layout_report();  // collective: every rank takes part
  if (groups_->layout.world_size > 1) say(layout_lines);
  if (start_step_ >= tc.max_steps) say(str("nothing to do: step ", start_step_, " >= training.max_steps"));

  reset_peak_memory_stats(device_);
  const auto t_start = Clock::now();
  auto t_last = t_start;
  int64_t steps_since_log = 0;
  for (int64_t step = start_step_; step < tc.max_steps; ++step) {
    auto [loss, norm] = train_step(step);
    ++steps_since_log;
    const int64_t done = step + 1;
    const bool last = done == tc.max_steps;
    if (done % config_.logging.interval == 0 || last || step == start_step_) {
      if (groups_->layout.dp_size > 1) {  // the global batch's mean loss (log points only)
        loss = clone(loss);
        groups_->dp->all_reduce(loss);
        loss = mul_scalar(loss, 1.0 / static_cast<double>(groups_->layout.dp_size));
      }
      const double loss_v = item(loss), norm_v = item(norm);  // the sync point of the step
      if (!std::isfinite(loss_v) || !std::isfinite(norm_v)) {
        throw InputError(str("training diverged at step ", done, ": loss ", loss_v, ", grad norm ", norm_v,
                             " (lower optimizer.lr or raise schedule.warmup_steps)"));
      }
      const double dt = seconds_since(t_last);
      t_last = Clock::now();
      const double tok_s = static_cast<double>(steps_since_log * tokens_per_step) / dt;
      steps_since_log = 0;
      const double elapsed = seconds_since(t_start);
      const double eta = elapsed / static_cast<double>(done - start_step_) * static_cast<double>(tc.max_steps - done);
      const double lr = learning_rate(config_.schedule, config_.optimizer.lr, step, tc.max_steps);
      const double mfu = peak > 0 ? tok_s * stats_.train_flops_per_token /
                                        (peak * static_cast<double>(groups_->layout.world_size))
                                  : 0.0;
      say(str("step ", done, "/", tc.max_steps, " | loss ", fmt("%.4f", loss_v), " | lr ", fmt("%.3e", lr),
              " | grad norm ", fmt("%.3f", norm_v), " | ", format_count(tok_s), " tok/s | MFU ",
              peak > 0 ? fmt("%.1f%%", 100.0 * mfu) : std::string("n/a"), " | elapsed ",
              format_duration(elapsed), " | ETA ", format_duration(eta)));
      if (log_) log_->record({{"step", static_cast<double>(done)},
                    {"loss", loss_v},
                    {"lr", lr},
                    {"grad_norm", norm_v},
                    {"tokens_per_s", tok_s},
                    {"mfu", mfu},
                    {"elapsed_s", elapsed},
                    {"eta_s", eta}});
      if (summary.losses.empty()) summary.first_loss = loss_v;
      summary.last_loss = loss_v;
      summary.losses.emplace_back(done, loss_v);
    } else {
      const double elapsed = seconds_since(t_start);
      if (log_) log_->progress(done, tc.max_steps, elapsed,
                     elapsed / static_cast<double>(done - start_step_) * static_cast<double>(tc.max_steps - done));
    }
    if (val_sampler_ && (done % tc.eval_interval == 0 || last)) {
      const double val = evaluate();
      summary.val_loss = val;
      say(str("eval step ", done, " | val loss ", fmt("%.4f", val)));
      if (log_) log_->record({{"step", static_cast<double>(done)}, {"val_loss", val}});
    }
    if (config_.checkpoint.interval > 0 && (done % config_.checkpoint.interval == 0 || last)) {
      save_checkpoint(done);
      say(str("checkpoint ", last_checkpoint_));
    }
  }
  summary.end_step = std::max(start_step_, tc.max_steps);
  summary.seconds = seconds_since(t_start);
  summary.tokens = (summary.end_step - start_step_) * tokens_per_step;
  summary.last_checkpoint = last_checkpoint_;
  summary.peak_memory_bytes = memory_stats(device_).peak_allocated_bytes;
  return summary;
}

}  // namespace nsa::train
