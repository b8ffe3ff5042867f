// nsa-train CONFIG [--set key.path=value ...] [--resume] [--print-config]
// The main job: reads a YAML config, trains, logs, checkpoints. Bad input ends with one line on stderr
// and exit status 1; an internal error with "internal error:" and status 2.
//
// Started by mpirun/srun (docs/distributed.md), every process runs this same main: MPI gives the rank and
// world size, parallel.tensor_parallel_size the TP size, and the rest is data parallel. An error on any
// rank aborts the whole job (MPI_Abort) with that rank's message, instead of leaving the others waiting in
// a collective.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/cuda_api.h"
#include "core/error.h"
#include "dist/mpi_env.h"
#include "train/trainer.h"

namespace {

constexpr const char* kUsage =
    "usage: nsa-train CONFIG [--set key.path=value ...] [--resume] [--print-config]\n"
    "  CONFIG          a YAML config (configs/tiny.yaml is the default small run; docs/config.md lists keys)\n"
    "  --set K=V       override one key after the file is read (repeatable), e.g. --set training.max_steps=50\n"
    "  --resume        continue from the newest checkpoint in checkpoint.dir (same as checkpoint.resume=auto)\n"
    "  --print-config  print the resolved config (every key) and exit\n"
    "Distributed: start N copies with mpirun or srun (bash launch/mpi_train.sh N CONFIG ...); TP size is\n"
    "parallel.tensor_parallel_size, DP = N / TP (docs/distributed.md).\n";

struct Args {
  std::string config;
  std::vector<std::string> overrides;
  bool resume = false, print_config = false;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--set") {
      if (i + 1 >= argc) throw nsa::InputError("--set: expected key.path=value after it");
      a.overrides.push_back(argv[++i]);
    } else if (arg.rfind("--set=", 0) == 0) {
      a.overrides.push_back(arg.substr(6));
    } else if (arg == "--resume") {
      a.resume = true;
    } else if (arg == "--print-config") {
      a.print_config = true;
    } else if (arg.rfind("--", 0) == 0) {
      throw nsa::InputError(nsa::str("unknown option '", arg, "' (see nsa-train --help)"));
    } else if (a.config.empty()) {
      a.config = arg;
    } else {
      throw nsa::InputError(nsa::str("unexpected argument '", arg, "': one CONFIG only (see nsa-train --help)"));
    }
  }
  if (a.config.empty()) throw nsa::InputError("missing CONFIG (see nsa-train --help)");
  return a;
}

// Started by an MPI launcher (mpirun, srun with PMI/PMIx)? A plain start is one process and never touches MPI.
bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"}) {
    if (std::getenv(var)) return true;
  }
  return false;
}

// The communicator backend: parallel.backend, with auto = nccl when training on GPUs, mpi on CPUs.
std::string choose_backend(const nsa::Config& config) {
  if (config.parallel.backend != "auto") return config.parallel.backend;
  const std::string& device = config.training.device;
  return device == "cuda" || (device == "auto" && nsa::cuda::available()) ? "nccl" : "mpi";
}

int world_rank = 0, world_size = 1;

// Ends the job after an error: a lone process returns `code`; in an MPI job every process is stopped.
int fail(int code, const char* kind, const char* what) {
  if (world_size > 1) {
    std::fprintf(stderr, "nsa-train: rank %d: %s%s\n", world_rank, kind, what);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
  std::fprintf(stderr, "nsa-train: %s%s\n", kind, what);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<nsa::dist::MpiEnv> mpi;
  try {
    const Args args = parse_args(argc, argv);
    const nsa::Config config = nsa::load_config(args.config, args.overrides);
    if (args.print_config) {
      std::fputs(nsa::to_yaml(config).c_str(), stdout);
      return 0;
    }
    nsa::dist::ProcessGroups groups = nsa::dist::make_single_process_groups();
    if (launched_by_mpi()) {
      mpi = std::make_unique<nsa::dist::MpiEnv>(argc, argv);
      world_rank = mpi->world().rank;
      world_size = mpi->world().size;
      groups = nsa::dist::make_process_groups(choose_backend(config),
                                              static_cast<int>(config.parallel.tensor_parallel_size),
                                              config.source);
    }
    nsa::train::Trainer trainer(config, {.resume = args.resume, .groups = &groups});
    const nsa::train::TrainSummary s = trainer.run();
    if (world_rank != 0) return 0;
    std::printf("done: steps %lld..%lld | %lld tokens in %.1f s | loss %.4f -> %.4f", static_cast<long long>(s.start_step),
                static_cast<long long>(s.end_step), static_cast<long long>(s.tokens), s.seconds, s.first_loss,
                s.last_loss);
    if (s.val_loss) std::printf(" | val loss %.4f", *s.val_loss);
    std::printf(" | peak memory %.1f MiB\n", static_cast<double>(s.peak_memory_bytes) / (1 << 20));
    if (!s.last_checkpoint.empty()) std::printf("checkpoint: %s\n", s.last_checkpoint.c_str());
    std::printf("metrics: %s/metrics.jsonl\n", config.logging.dir.c_str());
    return 0;
  } catch (const nsa::InputError& e) {
    return fail(1, "error: ", e.what());
  } catch (const std::exception& e) {
    return fail(2, "internal error: ", e.what());
  }
}
