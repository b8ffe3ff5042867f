#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/allocator.h"
#include "core/cuda_api.h"
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
      init_gen_(config_.seed) {
  const TrainingConfig& tc = config_.training;
  if (config_.parallel.tensor_parallel_size != 1) {
    throw InputError(str(config_.source, ": parallel.tensor_parallel_size: expected 1 (tensor parallelism needs ",
                         "the distributed trainer, which is not in this build yet), got ",
                         config_.parallel.tensor_parallel_size));
  }
  accum_steps_ = tc.global_batch_size / tc.micro_batch_size;  // validated divisible (one process)

  // Data first: a bad shard should fail before minutes of model init.
  train_data_ = std::make_unique<TokenDataset>(
      TokenDataset::open(config_.data.train, config_.model.vocab_size, "data.train"));
  train_sampler_ = std::make_unique<BatchSampler>(*train_data_, tc.seq_len, tc.micro_batch_size, config_.seed,
                                                  /*rank=*/0, /*world=*/1, /*shuffle=*/true);
  if (!config_.data.val.empty() && tc.eval_interval > 0) {
    val_data_ = std::make_unique<TokenDataset>(
        TokenDataset::open(config_.data.val, config_.model.vocab_size, "data.val"));
    val_sampler_ = std::make_unique<BatchSampler>(*val_data_, tc.seq_len, tc.micro_batch_size, config_.seed, 0,
                                                  1, /*shuffle=*/false);
  }

  // Directories only once the data is known to be good, so a bad glob leaves nothing behind.
  make_dir(config_.logging.dir, "logging.dir");
  if (config_.checkpoint.interval > 0 || config_.checkpoint.resume == "auto" || options_.resume) {
    make_dir(config_.checkpoint.dir, "checkpoint.dir");
  }

  nn::InitContext ctx{device_, DType::f32, &init_gen_, config_.model.init_std};
  model_ = std::make_unique<nn::Transformer>(ctx, config_);
  std::vector<OptimParam> params;
  for (const nn::NamedParam& p : model_->named_parameters()) {
    params.push_back({p.name, p.tensor, uses_weight_decay(p.name, config_.optimizer.no_decay)});
  }
  optimizer_ = std::make_unique<AdamW>(std::move(params), config_.optimizer);
  stats_ = nn::model_stats(config_);

  std::optional<std::string> resume_from;
  if (options_.resume || config_.checkpoint.resume == "auto") {
    resume_from = latest_checkpoint(config_.checkpoint.dir);
    if (!resume_from) say(str("resume: no checkpoint in '", config_.checkpoint.dir, "', starting from step 0"));
  }
  if (resume_from) restore(*resume_from);

  log_ = std::make_unique<MetricsLog>(config_.logging.dir, /*append=*/start_step_ > 0,
                                      !options_.quiet && (config_.logging.progress == "on" ||
                                                          (config_.logging.progress == "auto" && isatty(1))));
  std::ofstream(config_.logging.dir + "/config.yaml") << to_yaml(config_);
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

std::pair<Tensor, Tensor> Trainer::train_step(int64_t step) {
  const TrainingConfig& tc = config_.training;
  const double lr = learning_rate(config_.schedule, config_.optimizer.lr, step, tc.max_steps);
  Tensor loss_sum;
  Batch batch;
  for (int64_t micro = 0; micro < accum_steps_; ++micro) {
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
  const Tensor norm = global_grad_norm(optimizer_->grads());
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
  CheckpointState state;
  state.step = step;
  state.config_yaml = to_yaml(config_);
  for (const nn::NamedParam& p : model_->named_parameters()) state.params.emplace_back(p.name, p.tensor);
  state.optimizer = optimizer_->state();
  const DataCursor cursor = train_sampler_->cursor();
  state.counters = {{"rng.seed", static_cast<int64_t>(init_gen_.seed())},
                    {"rng.offset", static_cast<int64_t>(init_gen_.offset())},
                    {"data.epoch", static_cast<int64_t>(cursor.epoch)},
                    {"data.position", static_cast<int64_t>(cursor.position)},
                    {"optimizer.step", optimizer_->step_count()}};
  const std::string path = checkpoint_path(config_.checkpoint.dir, step);
  nsa::save_checkpoint(path, state, config_.checkpoint.dtype == "bf16" ? DType::bf16 : DType::f32);
  prune_checkpoints(config_.checkpoint.dir, config_.checkpoint.keep);
  last_checkpoint_ = path;
}

void Trainer::restore(const std::string& path) {
  const CheckpointState state = load_checkpoint(path);
  auto counter = [&](const std::string& name) -> int64_t {
    for (const auto& [k, v] : state.counters) {
      if (k == name) return v;
    }
    throw InputError(str(path, ": /state: missing counter '", name, "'"));
  };
  std::vector<nn::NamedParam> params = model_->named_parameters();
  if (state.params.size() != params.size()) {
    // Name one parameter that is on one side only, so the message says which part of the model differs.
    auto in_checkpoint = [&](const std::string& name) {
      for (const auto& [k, t] : state.params) {
        if (k == name) return true;
      }
      return false;
    };
    std::string differs;
    for (const nn::NamedParam& p : params) {
      if (!in_checkpoint(p.name)) {
        differs = str("; the checkpoint lacks the model's '", p.name, "'");
        break;
      }
    }
    for (const auto& [name, t] : state.params) {
      bool in_model = false;
      for (const nn::NamedParam& p : params) in_model = in_model || p.name == name;
      if (differs.empty() && !in_model) {
        differs = str("; the model has no '", name, "'");
        break;
      }
    }
    throw InputError(str(path, ": /params: ", state.params.size(), " parameters, the model has ",
                         params.size(), differs, " (a checkpoint of a different model?)"));
  }
  {
    autograd::NoGradGuard no_grad;
    for (const nn::NamedParam& p : params) {
      const Tensor* src = nullptr;
      for (const auto& [name, t] : state.params) {
        if (name == p.name) src = &t;
      }
      if (!src) throw InputError(str(path, ": /params: missing '", p.name, "'"));
      copy_into(p.tensor, *src, str(path, ": /params/", p.name));
    }
  }
  optimizer_->load_state(state.optimizer, counter("optimizer.step"), path);
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
          " tokens/step (", accum_steps_, " micro-batches of ", tc.micro_batch_size, ")"));
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
      const double mfu = peak > 0 ? tok_s * stats_.train_flops_per_token / peak : 0.0;
      say(str("step ", done, "/", tc.max_steps, " | loss ", fmt("%.4f", loss_v), " | lr ", fmt("%.3e", lr),
              " | grad norm ", fmt("%.3f", norm_v), " | ", format_count(tok_s), " tok/s | MFU ",
              peak > 0 ? fmt("%.1f%%", 100.0 * mfu) : std::string("n/a"), " | elapsed ",
              format_duration(elapsed), " | ETA ", format_duration(eta)));
      log_->record({{"step", static_cast<double>(done)},
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
      log_->progress(done, tc.max_steps, elapsed,
                     elapsed / static_cast<double>(done - start_step_) * static_cast<double>(tc.max_steps - done));
    }
    if (val_sampler_ && (done % tc.eval_interval == 0 || last)) {
      const double val = evaluate();
      summary.val_loss = val;
      say(str("eval step ", done, " | val loss ", fmt("%.4f", val)));
      log_->record({{"step", static_cast<double>(done)}, {"val_loss", val}});
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
