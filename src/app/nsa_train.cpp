// nsa-train CONFIG [--set key.path=value ...] [--resume] [--print-config]
// The main job: reads a YAML config, trains, logs, checkpoints. Bad input ends with one line on stderr
// and exit status 1; an internal error with "internal error:" and status 2.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "train/trainer.h"

namespace {

constexpr const char* kUsage =
    "usage: nsa-train CONFIG [--set key.path=value ...] [--resume] [--print-config]\n"
    "  CONFIG          a YAML config (configs/tiny.yaml is the default small run; docs/config.md lists keys)\n"
    "  --set K=V       override one key after the file is read (repeatable), e.g. --set training.max_steps=50\n"
    "  --resume        continue from the newest checkpoint in checkpoint.dir (same as checkpoint.resume=auto)\n"
    "  --print-config  print the resolved config (every key) and exit\n";

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

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse_args(argc, argv);
    const nsa::Config config = nsa::load_config(args.config, args.overrides);
    if (args.print_config) {
      std::fputs(nsa::to_yaml(config).c_str(), stdout);
      return 0;
    }
    nsa::train::Trainer trainer(config, {.resume = args.resume});
    const nsa::train::TrainSummary s = trainer.run();
    std::printf("done: steps %lld..%lld | %lld tokens in %.1f s | loss %.4f -> %.4f", static_cast<long long>(s.start_step),
                static_cast<long long>(s.end_step), static_cast<long long>(s.tokens), s.seconds, s.first_loss,
                s.last_loss);
    if (s.val_loss) std::printf(" | val loss %.4f", *s.val_loss);
    std::printf(" | peak memory %.1f MiB\n", static_cast<double>(s.peak_memory_bytes) / (1 << 20));
    if (!s.last_checkpoint.empty()) std::printf("checkpoint: %s\n", s.last_checkpoint.c_str());
    std::printf("metrics: %s/metrics.jsonl\n", config.logging.dir.c_str());
    return 0;
  } catch (const nsa::InputError& e) {
    std::fprintf(stderr, "nsa-train: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nsa-train: internal error: %s\n", e.what());
    return 2;
  }
}
