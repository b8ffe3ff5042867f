#include "ckpt_inspect.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tp_checkpoint.h"
#include "nn/model_stats.h"

namespace nsa::data_tools {

namespace {

namespace fs = std::filesystem;

std::string bytes_text(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes) / 1024;
    int u = 0;
    while (v >= 1024 && u < 3) v /= 1024, ++u;
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

// 1234567 -> "1,234,567"
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

struct Row {
  std::string name;   // dotted
  std::string shape;  // "[512, 128]" or "[256, 128] of [512, 128] (dim 0 from 256)"
  std::string dtype;
  uint64_t bytes = 0;
};

// The dotted names as a tree: each component a node, children in first-seen order.
struct Node {
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> children;
  const Row* row = nullptr;

  Node& child(const std::string& name) {
    for (auto& [n, c] : children) {
      if (n == name) return *c;
    }
    children.emplace_back(name, std::make_unique<Node>());
    return *children.back().second;
  }
};

bool all_indices(const Node& node) {
  if (node.row || node.children.empty()) return false;
  for (const auto& [name, child] : node.children) {
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) return false;
  }
  return true;
}

void print_tree(const Node& node, int indent, const std::string& prefix = "") {
  for (const auto& [name, child] : node.children) {
    // Numbered children print as "blocks.0", "blocks.1", ... at this level.
    if (all_indices(*child) && child->children.size() > 1) {
      print_tree(*child, indent, prefix + name + ".");
      continue;
    }
    // A chain of single children prints as one dotted label ("attn_norm.weight").
    std::string label = prefix + name;
    const Node* n = child.get();
    while (!n->row && n->children.size() == 1) {
      label += "." + n->children[0].first;
      n = n->children[0].second.get();
    }
    const std::string text = std::string(static_cast<size_t>(indent), ' ') + label;
    if (n->row) {
      std::printf("    %-44s %-5s %-34s %10s\n", text.c_str(), n->row->dtype.c_str(), n->row->shape.c_str(),
                  bytes_text(n->row->bytes).c_str());
    } else {
      std::printf("    %s\n", text.c_str());
    }
    print_tree(*n, indent + 2);
  }
}

void print_rows(const std::vector<Row>& rows) {
  Node root;
  for (const Row& r : rows) {
    Node* n = &root;
    size_t start = 0;
    while (true) {
      const size_t dot = r.name.find('.', start);
      n = &n->child(r.name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    n->row = &r;
  }
  print_tree(root, 0);
}

std::string slice_text(const Tensor& t, const TensorSlice* slice) {
  if (!slice) return t.shape().str();
  Dims full = t.shape();
  full[slice->dim] = slice->full_size;
  return str(t.shape().str(), " of ", full.str(), " (dim ", slice->dim, " from ", slice->offset, ")");
}

std::string model_line(const Config& c) {
  const nn::ModelStats stats = nn::model_stats(c);
  const ModelConfig& m = c.model;
  std::string kind = c.moe.enabled() ? str("MoE ", c.moe.n_experts, " experts top-", c.moe.top_k,
                                           c.moe.n_shared_experts > 0 ? str(" + ", c.moe.n_shared_experts, " shared") : "")
                                     : std::string("dense");
  return str(grouped(static_cast<uint64_t>(stats.params)), " parameters; ", kind, ", ", c.attention.type, " attention; vocab ", m.vocab_size,
             ", d_model ", m.d_model, ", ", m.n_layers, " layers, ", m.n_heads, " heads / ", m.n_kv_heads,
             " KV heads of ", m.resolved_head_dim(), ", ", m.tie_embeddings ? "tied" : "untied", " embeddings");
}

size_t count_lines(const std::string& text) {
  size_t lines = 0;
  for (const char c : text) lines += c == '\n';
  return lines + (!text.empty() && text.back() != '\n');
}

void print_checkpoint(const std::string& shown, const CheckpointState& state, uint64_t file_bytes,
                      const std::string& what, const InspectOptions& options) {
  std::printf("%s: %s, %s\n", shown.c_str(), what.c_str(), bytes_text(file_bytes).c_str());
  std::printf("  step %lld\n", static_cast<long long>(state.step));
  if (state.tp) std::printf("  tensor-parallel piece: rank %d of %d\n", state.tp->rank, state.tp->size);
  try {
    const Config config = parse_config(state.config_yaml, shown + " (stored config)");
    std::printf("  model: %s\n", model_line(config).c_str());
  } catch (const InputError& e) {
    std::printf("  model: (the stored config does not load: %s)\n", e.what());
  }
  std::string counters;
  for (const auto& [name, value] : state.counters) {
    counters += str(counters.empty() ? "" : ", ", name, " ", value);
  }
  std::printf("  counters: %s\n", counters.empty() ? "(none)" : counters.c_str());

  const char* param_dtype = state.params_stored == DType::bf16 ? "bf16" : "f32";
  const uint64_t param_element = state.params_stored == DType::bf16 ? 2 : 4;
  std::vector<Row> rows;
  uint64_t values = 0;
  for (const auto& [name, t] : state.params) {
    const TensorSlice* slice = nullptr;
    if (state.tp) {
      const auto it = state.tp->param_slices.find(name);
      if (it != state.tp->param_slices.end()) slice = &it->second;
    }
    rows.push_back({name, slice_text(t, slice), param_dtype, static_cast<uint64_t>(t.numel()) * param_element});
    values += static_cast<uint64_t>(t.numel());
  }
  std::printf("  params: %zu tensors, %s values, stored %s (%s)\n", state.params.size(), grouped(values).c_str(),
              param_dtype, bytes_text(values * param_element).c_str());
  if (!options.brief) print_rows(rows);

  // Optimizer entries by kind ("exp_avg/..."); they mirror the parameters, so only totals are shown.
  std::vector<std::pair<std::string, std::pair<size_t, uint64_t>>> kinds;
  uint64_t optimizer_values = 0;
  for (const auto& [name, t] : state.optimizer) {
    const std::string kind = name.substr(0, name.find('/'));
    auto it = kinds.begin();
    while (it != kinds.end() && it->first != kind) ++it;
    if (it == kinds.end()) it = kinds.insert(kinds.end(), {kind, {0, 0}});
    it->second.first += 1;
    it->second.second += static_cast<uint64_t>(t.numel());
    optimizer_values += static_cast<uint64_t>(t.numel());
  }
  if (state.optimizer.empty()) {
    std::printf("  optimizer: none (weights only)\n");
  } else {
    std::printf("  optimizer: %zu tensors, %s values, stored f32 (%s)\n", state.optimizer.size(),
                grouped(optimizer_values).c_str(), bytes_text(optimizer_values * 4).c_str());
    for (const auto& [kind, count] : kinds) {
      std::printf("    %-12s %zu tensors, %s values\n", kind.c_str(), count.first, grouped(count.second).c_str());
    }
  }
  if (options.print_config) {
    std::printf("  config:\n");
    std::string line;
    for (const char c : state.config_yaml + (state.config_yaml.empty() || state.config_yaml.back() == '\n' ? "" : "\n")) {
      if (c != '\n') {
        line += c;
        continue;
      }
      std::printf("    %s\n", line.c_str());
      line.clear();
    }
  } else {
    std::printf("  config: %zu lines of YAML (--config prints it)\n", count_lines(state.config_yaml));
  }
}

void print_safetensors(const std::string& path, const InspectOptions& options) {
  const SafetensorsContents contents = load_safetensors(path);  // validates the data too
  const SafetensorsHeader& h = contents.header;
  std::map<std::string, uint64_t> dtypes;
  uint64_t values = 0;
  std::vector<Row> rows;
  for (const SafetensorsEntry& e : h.tensors) {
    dtypes[e.dtype] += 1;
    values += static_cast<uint64_t>(e.shape.numel());
    rows.push_back({e.name, e.shape.str(), e.dtype, e.end - e.begin});
  }
  std::string dtype_list;
  for (const auto& [d, n] : dtypes) dtype_list += str(dtype_list.empty() ? "" : ", ", n, " ", d);
  std::printf("%s: safetensors, %s (header %s bytes)\n", path.c_str(), bytes_text(8 + h.header_bytes + h.data_bytes).c_str(),
              grouped(h.header_bytes).c_str());
  std::printf("  tensors: %zu (%s), %s values\n", h.tensors.size(), dtype_list.empty() ? "none" : dtype_list.c_str(),
              grouped(values).c_str());
  const std::string* config = nullptr;
  for (const auto& [k, v] : h.metadata) {
    if (k == "nsa_train.config") {
      config = &v;
      std::printf("  metadata %s: %zu lines of YAML%s\n", k.c_str(), count_lines(v), options.print_config ? ":" : " (--config prints it)");
      if (options.print_config) std::printf("%s%s", v.c_str(), !v.empty() && v.back() == '\n' ? "" : "\n");
    } else {
      std::printf("  metadata %s: %s\n", k.c_str(), v.c_str());
    }
  }
  if (config) {
    try {
      std::printf("  model: %s\n", model_line(parse_config(*config, path + " (metadata config)")).c_str());
    } catch (const InputError& e) {
      std::printf("  model: (the stored config does not load: %s)\n", e.what());
    }
  }
  const fs::path config_json = fs::path(path).parent_path() / "config.json";
  if (fs::exists(config_json)) std::printf("  beside it: %s\n", config_json.string().c_str());
  if (!options.brief) print_rows(rows);
}

bool is_hdf5(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::string(magic, 8) == std::string("\x89HDF\r\n\x1a\n", 8);
}

}  // namespace

void inspect_path(const std::string& path, const InspectOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const std::string file = (fs::path(path) / "model.safetensors").string();
    if (!fs::exists(file)) throw InputError(str(path, ": a directory without model.safetensors"));
    print_safetensors(file, options);
    return;
  }
  const bool exists = fs::exists(path, ec);
  if (exists && !is_hdf5(path)) {
    const bool named = path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
    if (named) {
      print_safetensors(path, options);
      return;
    }
  }
  if (exists) {
    const CheckpointState state = load_checkpoint(path);  // a whole file or one piece, as it is
    const std::string what = state.tp ? "nsa-train checkpoint piece (format_version 2)"
                                      : "nsa-train checkpoint (format_version 1)";
    print_checkpoint(path, state, fs::file_size(path), what, options);
    return;
  }
  const WholeCheckpoint whole = load_whole_checkpoint(path);  // a set's stem
  uint64_t bytes = 0;
  for (const std::string& f : whole.files) bytes += fs::file_size(f);
  print_checkpoint(path, whole.state, bytes,
                   str("tensor-parallel set of ", whole.source_tp, " pieces (shown merged)"), options);
}

}  // namespace nsa::data_tools
