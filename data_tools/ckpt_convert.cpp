#include "ckpt_convert.h"

#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "autograd/grad_mode.h"
#include "core/random.h"
#include "io/safetensors.h"
#include "nn/transformer.h"
#include "ops/ops.h"

namespace nsa::data_tools {

namespace {

namespace fs = std::filesystem;

// The model `config` describes, on the CPU in f32 (its parameters say which names and shapes to expect).
std::unique_ptr<nn::Transformer> build_model(const Config& config) {
  Generator gen(config.seed);
  nn::InitContext ctx;
  ctx.gen = &gen;
  ctx.init_std = config.model.init_std;  // CPU, f32 master weights, no tensor parallelism
  return std::make_unique<nn::Transformer>(ctx, config);
}

bool parse_int64(const std::string& text, int64_t* out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

void write_text_file(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw InputError(str(path, ": cannot write ", temp));
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) throw InputError(str(path, ": cannot rename ", temp, " over it: ", ec.message()));
}

bool equal_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const Tensor ha = contiguous(to(a, Device::cpu(), DType::f32)), hb = contiguous(to(b, Device::cpu(), DType::f32));
  return std::memcmp(ha.data_ptr(), hb.data_ptr(), ha.nbytes()) == 0;
}

}  // namespace

ExportResult export_safetensors(const CheckpointState& whole, const Config& config, const std::string& out_dir,
                                DType dtype, const std::string& source) {
  NSA_CHECK(!whole.tp, "[export_safetensors] expected a whole checkpoint");
  ExportResult result;
  result.architecture = hf_architecture(config);
  // The parameters must be exactly the stored config's model's, so config.json describes the tensors.
  std::map<std::string, const Tensor*> stored;
  for (const auto& [name, tensor] : whole.params) stored[name] = &tensor;
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const nn::NamedParam& p : build_model(config)->named_parameters()) {
    const auto it = stored.find(p.name);
    if (it == stored.end()) {
      throw InputError(str(source, ": /params: missing '", p.name, "' (a parameter of the stored config's model)"));
    }
    if (it->second->shape() != p.tensor.shape()) {
      throw InputError(str(source, ": /params/", p.name, ": shape ", it->second->shape().str(),
                           ", the stored config's model has ", p.tensor.shape().str()));
    }
    tensors.emplace_back(hf_name(p.name), *it->second);
    stored.erase(it);
  }
  if (!stored.empty()) {
    throw InputError(str(source, ": /params/", stored.begin()->first, ": not a parameter of the stored config's model"));
  }
  Metadata metadata = {{"format", "pt"},
                       {kMetaConfig, whole.config_yaml},
                       {kMetaStep, std::to_string(whole.step)},
                       {"nsa_train.architecture", result.architecture.name}};
  for (const auto& [name, value] : whole.counters) {
    metadata.emplace_back(kMetaCounterPrefix + name, std::to_string(value));
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir)) {
    throw InputError(str(out_dir, ": cannot create the output directory", ec ? ": " + ec.message() : ""));
  }
  result.safetensors_path = (fs::path(out_dir) / "model.safetensors").string();
  result.config_path = (fs::path(out_dir) / "config.json").string();
  save_safetensors(result.safetensors_path, tensors, dtype, metadata);
  write_text_file(result.config_path, hf_config_json(config, dtype));
  result.tensors = static_cast<int64_t>(tensors.size());
  result.bytes = static_cast<int64_t>(fs::file_size(result.safetensors_path));
  return result;
}

ImportResult import_safetensors(const std::string& input, const std::optional<std::string>& config_path,
                                std::optional<int64_t> step) {
  std::string file = input;
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    file = (fs::path(input) / "model.safetensors").string();
    if (!fs::exists(file)) {
      const bool sharded = fs::exists(fs::path(input) / "model.safetensors.index.json");
      throw InputError(str(input, ": no model.safetensors in this directory",
                           sharded ? " (sharded safetensors with an index are not supported)" : ""));
    }
  }
  SafetensorsContents contents = load_safetensors(file);
  std::map<std::string, std::string> meta(contents.header.metadata.begin(), contents.header.metadata.end());

  ImportResult result;
  if (config_path) {
    result.config = load_config(*config_path);
  } else if (meta.count(kMetaConfig)) {
    result.config = parse_config(meta[kMetaConfig], file + " (metadata " + kMetaConfig + ")");
  } else {
    throw InputError(str(file, ": no nsa-train config in the metadata (not exported by nsa-ckpt); pass ",
                         "--config CONFIG.yaml describing the model"));
  }
  const Config& config = result.config;

  // File tensors under our names; every name must map and appear once.
  std::map<std::string, std::pair<std::string, Tensor>> by_name;  // ours -> (exported name, tensor)
  for (auto& [hf, tensor] : contents.tensors) {
    by_name.emplace(nsa_name(hf, file), std::make_pair(hf, tensor));
  }
  if (config.model.tie_embeddings) {
    const auto head = by_name.find("lm_head.weight");
    const auto embed = by_name.find("embed.weight");
    if (head != by_name.end()) {
      if (embed == by_name.end() || !equal_values(head->second.second, embed->second.second)) {
        throw InputError(str(file, ": lm_head.weight differs from model.embed_tokens.weight, but the config ",
                             "ties them (model.tie_embeddings: true)"));
      }
      by_name.erase(head);
      result.notes.push_back("lm_head.weight equals the embedding (tied): dropped");
    }
  }

  const std::unique_ptr<nn::Transformer> model = build_model(config);
  CheckpointState& state = result.state;
  NoGradGuard no_grad;
  for (const nn::NamedParam& p : model->named_parameters()) {
    const auto it = by_name.find(p.name);
    if (it == by_name.end()) {
      throw InputError(str(file, ": missing tensor '", hf_name(p.name), "' (parameter ", p.name, " of the ",
                           config_path ? *config_path : "stored", " config's model)"));
    }
    const auto& [hf, tensor] = it->second;
    if (tensor.shape() != p.tensor.shape()) {
      throw InputError(str(file, ": ", hf, ": shape ", tensor.shape().str(), ", the config's model needs ",
                           p.tensor.shape().str(), " (", p.name, ")"));
    }
    state.params.emplace_back(p.name, tensor);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    throw InputError(str(file, ": tensor '", by_name.begin()->second.first, "' (", by_name.begin()->first,
                         ") is not a parameter of the config's model (", by_name.size(), " such tensor",
                         by_name.size() == 1 ? "" : "s", ")"));
  }
  for (const auto& [name, tensor] : state.params) {
    state.optimizer.emplace_back("exp_avg/" + name, zeros(tensor.shape()));
    state.optimizer.emplace_back("exp_avg_sq/" + name, zeros(tensor.shape()));
  }

  // Counters: the exported ones where present (the data cursor continues), a fresh optimizer.
  std::vector<std::pair<std::string, int64_t>> counters = {{"rng.seed", static_cast<int64_t>(config.seed)},
                                                           {"rng.offset", 0},
                                                           {"data.epoch", 0},
                                                           {"data.position", 0},
                                                           {"optimizer.step", 0}};
  bool from_metadata = false;
  for (const auto& [key, text] : contents.header.metadata) {
    if (key.rfind(kMetaCounterPrefix, 0) != 0) continue;
    const std::string name = key.substr(std::strlen(kMetaCounterPrefix));
    int64_t value = 0;
    if (name.empty() || !parse_int64(text, &value)) {
      throw InputError(str(file, ": metadata ", key, ": expected an integer, got '", text, "'"));
    }
    from_metadata = true;
    if (name == "optimizer.step") {
      if (value != 0) {
        result.notes.push_back(str("optimizer restarts: zero AdamW moments, optimizer.step 0 (was ", value, ")"));
      }
      continue;
    }
    bool found = false;
    for (auto& [k, v] : counters) {
      if (k == name) v = value, found = true;
    }
    if (!found) counters.emplace_back(name, value);
  }
  if (!from_metadata) result.notes.push_back("no counters in the metadata: data cursor at 0, seed from the config");
  state.counters = counters;

  int64_t stored_step = 0;
  if (meta.count(kMetaStep) && !parse_int64(meta[kMetaStep], &stored_step)) {
    throw InputError(str(file, ": metadata ", kMetaStep, ": expected an integer, got '", meta[kMetaStep], "'"));
  }
  state.step = step.value_or(stored_step);
  if (state.step < 0) throw InputError(str(file, ": negative step ", state.step));
  state.config_yaml = to_yaml(config);
  return result;
}

Tensor model_logits(const CheckpointState& whole, const Config& config, const std::vector<int64_t>& tokens,
                    const std::string& source) {
  if (tokens.empty()) throw InputError("logits: no tokens given");
  for (const int64_t t : tokens) {
    if (t < 0 || t >= config.model.vocab_size) {
      throw InputError(str("logits: token ", t, " outside the vocabulary [0, ", config.model.vocab_size, ")"));
    }
  }
  const std::unique_ptr<nn::Transformer> model = build_model(config);
  std::map<std::string, const Tensor*> params;
  for (const auto& [name, tensor] : whole.params) params[name] = &tensor;
  NoGradGuard no_grad;
  for (const nn::NamedParam& p : model->named_parameters()) {
    const auto it = params.find(p.name);
    if (it == params.end()) throw InputError(str(source, ": /params: missing '", p.name, "'"));
    copy_into(p.tensor, *it->second, str(source, ": /params/", p.name));
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  const Tensor ids = from_vector<int64_t>(tokens, {1, n}, DType::i64, Device::cpu());
  return contiguous(reshape(model->logits(ids, DType::f32), {n, config.model.vocab_size}));
}

void write_npy(const std::string& path, const Tensor& values) {
  NSA_CHECK(values.dim() == 2 && values.dtype() == DType::f32, "[write_npy] expected a 2-D f32 tensor, got ",
            values.desc());
  const Tensor host = contiguous(to(values, Device::cpu()));
  std::string header = str("{'descr': '<f4', 'fortran_order': False, 'shape': (", host.size(0), ", ",
                           host.size(1), "), }");
  // magic (6) + version (2) + length (2) + header, padded with spaces and ended by '\n' to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint16_t length = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&length), 2);
  out << header;
  out.write(static_cast<const char*>(host.data_ptr()), static_cast<std::streamsize>(host.nbytes()));
  out.close();
  if (!out) throw InputError(str(path, ": cannot write"));
}

}  // namespace nsa::data_tools
