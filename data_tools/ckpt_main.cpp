// nsa-ckpt: the checkpoint tools. `inspect` summarises a checkpoint or an export, `export-safetensors` /
// `import-safetensors` convert to and from Hugging Face's format, `reshard` moves a checkpoint between
// tensor-parallel sizes, `strip-optimizer` keeps the weights only, `logits` runs the model on given tokens.
// Every error is one line on stderr ("nsa-ckpt: error: ...") and exit status 1. docs/tools.md has examples.
#include <charconv>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "args.h"
#include "ckpt_convert.h"
#include "ckpt_inspect.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/tp_checkpoint.h"
#include "ops/factory.h"

namespace nsa::data_tools {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: nsa-ckpt <command> [options]\n"
    "\n"
    "commands:\n"
    "  inspect             print a checkpoint's (or an export's) step, model, counters and tensor tree\n"
    "  export-safetensors  write model.safetensors + config.json (Llama / Mixtral names for transformers)\n"
    "  import-safetensors  turn a safetensors export back into a checkpoint that training resumes from\n"
    "  reshard             rewrite a checkpoint as N tensor-parallel pieces (N = 1: one whole file)\n"
    "  strip-optimizer     keep the weights only (bf16 by default)\n"
    "  logits              run the model on given tokens and write the f32 logits (.npy)\n"
    "\n"
    "CKPT is a checkpoint file, one piece of a tensor-parallel set (<stem>.tp<r>-of-<N>.h5: the whole set\n"
    "is read), or a set's stem. nsa-ckpt <command> --help describes its options; docs/tools.md has examples.\n";

constexpr const char* kInspectUsage =
    "usage: nsa-ckpt inspect [options] PATH...\n"
    "PATH: a checkpoint (whole, a piece, or a set's stem), a .safetensors file or an export directory\n"
    "\n"
    "  --config   print the stored YAML config\n"
    "  --brief    no tensor tree\n";

constexpr const char* kExportUsage =
    "usage: nsa-ckpt export-safetensors CKPT --out DIR [--dtype f32|bf16]\n"
    "writes DIR/model.safetensors (parameters under Hugging Face names) and DIR/config.json;\n"
    "dense full-attention models load as LlamaForCausalLM, MoE ones as MixtralForCausalLM\n"
    "\n"
    "  --out DIR      output directory (created if missing)\n"
    "  --dtype T      f32 (default) or bf16\n";

constexpr const char* kImportUsage =
    "usage: nsa-ckpt import-safetensors SRC --out CKPT.h5 [--config CONFIG.yaml] [--step N]\n"
    "SRC: a model.safetensors file or a directory holding one. Writes a checkpoint with the weights, zero\n"
    "AdamW moments and the exported counters, which nsa-train --resume continues from\n"
    "\n"
    "  --out FILE       the checkpoint to write (name it step_XXXXXXXX.h5 in checkpoint.dir to resume)\n"
    "  --config FILE    the model's config (default: the nsa-train config stored in the export)\n"
    "  --step N         the step to record (default: the exported step, else 0)\n";

constexpr const char* kReshardUsage =
    "usage: nsa-ckpt reshard CKPT --tp N --out PATH\n"
    "N = 1: writes PATH as one whole checkpoint. N > 1: writes <stem>.tp<r>-of-<N>.h5 for r = 0..N-1,\n"
    "where <stem> is PATH without a trailing .h5. Parameters keep their stored dtype; optimizer moments are\n"
    "split like their parameters\n"
    "\n"
    "  --tp N       tensor-parallel size of the output\n"
    "  --out PATH   output file (N = 1) or stem\n";

constexpr const char* kStripUsage =
    "usage: nsa-ckpt strip-optimizer CKPT --out FILE [--dtype bf16|f32]\n"
    "writes FILE with the parameters (bf16 by default), the counters and the config, without optimizer state\n"
    "\n"
    "  --out FILE   output checkpoint\n"
    "  --dtype T    bf16 (default) or f32\n";

constexpr const char* kLogitsUsage =
    "usage: nsa-ckpt logits CKPT --tokens T0,T1,... [--out FILE.npy]\n"
    "runs the model (CPU, f32) on one sequence and writes its logits [tokens, vocab] as .npy\n"
    "\n"
    "  --tokens LIST   comma-separated token ids\n"
    "  --out FILE      .npy output (default: print a summary only)\n";

constexpr const char* kTool = "nsa-ckpt";

bool wants_help(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

// The single positional argument of `command`.
std::string one_input(const Args& args, const std::string& command, const char* what) {
  if (args.positional().empty()) throw InputError(str(command, ": no ", what, " given (see nsa-ckpt ", command, " --help)"));
  if (args.positional().size() > 1) {
    throw InputError(str(command, ": unexpected argument '", args.positional()[1], "' (one ", what, " only)"));
  }
  return args.positional()[0];
}

std::string required(const Args& args, const std::string& command, const char* option) {
  if (!args.has(option) || args.text(option, "").empty()) {
    throw InputError(str(command, ": --", option, " is required (see nsa-ckpt ", command, " --help)"));
  }
  return args.text(option, "");
}

DType dtype_option(const Args& args, const char* fallback) {
  const std::string t = args.text("dtype", fallback);
  if (t == "f32") return DType::f32;
  if (t == "bf16") return DType::bf16;
  throw InputError(str("--dtype: expected f32 or bf16, got '", t, "'"));
}

// Creates the directory an output file goes into.
void make_parent(const std::string& path) {
  const fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(str(path, ": cannot create the directory ", dir.string(), ": ", ec.message()));
}

std::string size_text(const std::string& path) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  if (ec) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

int inspect_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kInspectUsage, stdout), 0;
  const Args args("inspect", argv, {{"config", false}, {"brief", false}}, kTool);
  if (args.positional().empty()) throw InputError("inspect: no PATH given (see nsa-ckpt inspect --help)");
  const InspectOptions options{args.has("config"), args.has("brief")};
  for (const std::string& path : args.positional()) inspect_path(path, options);
  return 0;
}

int export_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kExportUsage, stdout), 0;
  const Args args("export-safetensors", argv, {{"out"}, {"dtype"}}, kTool);
  const std::string input = one_input(args, "export-safetensors", "CKPT");
  const std::string out = required(args, "export-safetensors", "out");
  const DType dtype = dtype_option(args, "f32");
  const WholeCheckpoint ckpt = load_whole_checkpoint(input);
  const ExportResult r = export_safetensors(ckpt.state, ckpt.config, out, dtype, input);
  std::printf("nsa-ckpt export-safetensors: %s (step %lld) -> %s (%lld tensors, %s, %s) and %s\n", input.c_str(),
              static_cast<long long>(ckpt.state.step), r.safetensors_path.c_str(), static_cast<long long>(r.tensors),
              dtype_name(dtype), size_text(r.safetensors_path).c_str(), r.config_path.c_str());
  if (r.architecture.loadable) {
    std::printf("  architecture: %s (loadable by transformers)\n", r.architecture.name.c_str());
  } else {
    std::printf("  architecture: %s (not loadable by transformers: %s; nsa-train names, see docs/tools.md)\n",
                r.architecture.name.c_str(), r.architecture.why_not.c_str());
  }
  return 0;
}

int import_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kImportUsage, stdout), 0;
  const Args args("import-safetensors", argv, {{"out"}, {"config"}, {"step"}}, kTool);
  const std::string input = one_input(args, "import-safetensors", "SRC");
  const std::string out = required(args, "import-safetensors", "out");
  std::optional<std::string> config;
  if (args.has("config")) config = args.text("config", "");
  std::optional<int64_t> step;
  if (args.has("step")) step = args.count("step", 0);
  const ImportResult r = import_safetensors(input, config, step);
  make_parent(out);
  save_checkpoint(out, r.state, DType::f32);
  std::printf("nsa-ckpt import-safetensors: %s -> %s (step %lld, %zu parameters, %s)\n", input.c_str(), out.c_str(),
              static_cast<long long>(r.state.step), r.state.params.size(), size_text(out).c_str());
  for (const std::string& note : r.notes) std::printf("  note: %s\n", note.c_str());
  return 0;
}

int reshard_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kReshardUsage, stdout), 0;
  const Args args("reshard", argv, {{"tp"}, {"out"}}, kTool);
  const std::string input = one_input(args, "reshard", "CKPT");
  const std::string out = required(args, "reshard", "out");
  if (!args.has("tp")) throw InputError("reshard: --tp N is required (see nsa-ckpt reshard --help)");
  const int64_t tp = args.count("tp", 0);
  if (tp < 1 || tp > 4096) throw InputError(str("reshard: --tp: expected 1..4096, got ", tp));
  const WholeCheckpoint ckpt = load_whole_checkpoint(input);
  const DType dtype = ckpt.state.params_stored;
  make_parent(out);
  std::vector<std::string> written;
  if (tp == 1) {
    save_checkpoint(out, ckpt.state, dtype);
    written.push_back(out);
  } else {
    std::vector<CheckpointState> pieces;
    try {
      pieces = split_tp_checkpoint(ckpt.state, ckpt.config, static_cast<int>(tp));
    } catch (const InputError& e) {
      throw InputError(str("reshard --tp ", tp, ": ", e.what()));
    }
    std::string stem = out;
    if (stem.size() > 3 && stem.compare(stem.size() - 3, 3, ".h5") == 0) stem.resize(stem.size() - 3);
    save_tp_checkpoint(stem, pieces, dtype);
    for (int r = 0; r < tp; ++r) written.push_back(tp_piece_path(stem, r, static_cast<int>(tp)));
  }
  std::printf("nsa-ckpt reshard: %s (%s) -> tp %lld, %s parameters\n", input.c_str(),
              ckpt.source_tp == 1 ? "whole" : str(ckpt.source_tp, " pieces").c_str(), static_cast<long long>(tp),
              dtype_name(dtype));
  for (const std::string& f : written) std::printf("  %s (%s)\n", f.c_str(), size_text(f).c_str());
  return 0;
}

int strip_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kStripUsage, stdout), 0;
  const Args args("strip-optimizer", argv, {{"out"}, {"dtype"}}, kTool);
  const std::string input = one_input(args, "strip-optimizer", "CKPT");
  const std::string out = required(args, "strip-optimizer", "out");
  const DType dtype = dtype_option(args, "bf16");
  WholeCheckpoint ckpt = load_whole_checkpoint(input);
  const size_t dropped = ckpt.state.optimizer.size();
  ckpt.state.optimizer.clear();
  make_parent(out);
  save_checkpoint(out, ckpt.state, dtype);
  uint64_t before = 0;
  for (const std::string& f : ckpt.files) before += fs::file_size(f);
  std::printf("nsa-ckpt strip-optimizer: %s (%.1f MiB) -> %s (%s, %s parameters, %zu optimizer tensors dropped)\n",
              input.c_str(), static_cast<double>(before) / (1 << 20), out.c_str(), size_text(out).c_str(),
              dtype_name(dtype), dropped);
  return 0;
}

std::vector<int64_t> parse_tokens(const std::string& text) {
  std::vector<int64_t> tokens;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size()) {
      throw InputError(str("--tokens: expected comma-separated integers, got '", item, "'"));
    }
    tokens.push_back(v);
    start = comma + 1;
  }
  return tokens;
}

int logits_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) return std::fputs(kLogitsUsage, stdout), 0;
  const Args args("logits", argv, {{"tokens"}, {"out"}}, kTool);
  const std::string input = one_input(args, "logits", "CKPT");
  const std::vector<int64_t> tokens = parse_tokens(required(args, "logits", "tokens"));
  const WholeCheckpoint ckpt = load_whole_checkpoint(input);
  const Tensor logits = model_logits(ckpt.state, ckpt.config, tokens, input);
  const std::vector<float> v = to_vector<float>(logits);
  double sum = 0, sum_sq = 0;
  for (const float x : v) sum += x, sum_sq += static_cast<double>(x) * x;
  std::printf("nsa-ckpt logits: %s, %zu tokens -> [%lld, %lld] f32, sum %.6f, sum of squares %.6f\n", input.c_str(),
              tokens.size(), static_cast<long long>(logits.size(0)), static_cast<long long>(logits.size(1)), sum,
              sum_sq);
  if (args.has("out")) {
    const std::string out = args.text("out", "");
    make_parent(out);
    write_npy(out, logits);
    std::printf("  wrote %s\n", out.c_str());
  }
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 2) throw InputError("missing command (see nsa-ckpt --help)");
  if (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") return std::fputs(kUsage, stdout), 0;
  const std::string command = argv[1];
  const std::vector<std::string> rest(argv + 2, argv + argc);
  if (command == "inspect") return inspect_command(rest);
  if (command == "export-safetensors") return export_command(rest);
  if (command == "import-safetensors") return import_command(rest);
  if (command == "reshard") return reshard_command(rest);
  if (command == "strip-optimizer") return strip_command(rest);
  if (command == "logits") return logits_command(rest);
  throw InputError(str("unknown command '", command,
                       "' (inspect, export-safetensors, import-safetensors, reshard, strip-optimizer, logits; ",
                       "see nsa-ckpt --help)"));
}

}  // namespace
}  // namespace nsa::data_tools

int main(int argc, char** argv) {
  try {
    return nsa::data_tools::run(argc, argv);
  } catch (const nsa::InputError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "nsa-ckpt: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "nsa-ckpt: internal error: %s\n", e.what());
    return 2;
  }
}
