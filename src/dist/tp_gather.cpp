#include "dist/tp_gather.h"

#include <algorithm>
#include <set>

#include "ops/ops.h"

namespace nsa::dist {

namespace {

// Rows [0, rows) of each rank's padded block of `gathered` ([tp, max_rows, inner]), concatenated.
Tensor unpad(const Tensor& gathered, const std::vector<int64_t>& rows, int64_t max_rows, int64_t inner) {
  std::vector<Tensor> parts;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] > 0) parts.push_back(narrow(select(reshape(gathered, {static_cast<int64_t>(rows.size()), max_rows, inner}), 0, static_cast<int64_t>(r)), 0, 0, rows[r]));
  }
  return cat(parts, 0);
}

// All-gather of a tensor split along `dim` (chunks may differ in size by one row).
Tensor gather_split(const Tensor& local, int dim, Communicator& tp) {
  const int size = tp.size();
  // Put the split dim first so each rank's chunk is one contiguous block.
  const Tensor moved = contiguous(dim == 0 ? local : transpose(local, 0, dim));
  const int64_t rows = moved.size(0), inner = moved.numel() / std::max<int64_t>(rows, 1);
  Tensor count = full({1}, static_cast<double>(rows), DType::i64, local.device());
  Tensor counts = empty({size}, DType::i64, local.device());
  tp.all_gather(count, counts);
  const std::vector<int64_t> all_rows = to_vector<int64_t>(counts);
  const int64_t max_rows = *std::max_element(all_rows.begin(), all_rows.end());
  Tensor padded = zeros({max_rows, inner}, moved.dtype(), moved.device());
  if (rows > 0) copy_(narrow(padded, 0, 0, rows), reshape(moved, {rows, inner}));
  Tensor gathered = empty({size * max_rows * inner}, moved.dtype(), moved.device());
  tp.all_gather(padded, gathered);
  Dims shape = moved.shape();
  shape[0] = 0;
  for (int64_t r : all_rows) shape[0] += r;
  Tensor whole = reshape(unpad(gathered, all_rows, max_rows, inner), shape);
  return contiguous(dim == 0 ? whole : transpose(whole, 0, dim));
}

// "…experts.<e>.<tail>" -> {"…experts.", e, "<tail>"}; e = -1 when the name has no expert index.
struct ExpertName {
  std::string head;
  int64_t index = -1;
  std::string tail;
};

ExpertName parse_expert(const std::string& name) {
  static const std::string key = ".experts.";
  const size_t at = name.find(key);
  if (at == std::string::npos) return {};
  const size_t start = at + key.size(), dot = name.find('.', start);
  if (dot == std::string::npos || dot == start) return {};
  const std::string digits = name.substr(start, dot - start);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return {};
  return {name.substr(0, start), std::stoll(digits), name.substr(dot)};
}

}  // namespace

NamedTensors gather_tp(const NamedTensors& local, const Config& config, Communicator& tp,
                       std::string (*param_name)(const std::string&)) {
  const int size = tp.size();
  if (size == 1) return local;
  autograd::NoGradGuard no_grad;
  auto layout_of = [&](const std::string& name) {
    return tp_shard(param_name ? param_name(name) : name, config, size);
  };
  NamedTensors out;
  std::set<std::string> experts_done;  // heads whose experts were already emitted
  for (const auto& [name, tensor] : local) {
    const TpShard shard = layout_of(name);
    if (shard.kind == TpShard::Kind::replicated) {
      out.emplace_back(name, tensor);
    } else if (shard.kind == TpShard::Kind::split) {
      out.emplace_back(name, gather_split(tensor, shard.dim, tp));
    } else {
      // Owned (MoE experts): at the first local expert of a layer, emit every expert of that layer in
      // order, each broadcast by its owner; the local experts' tensors are the shape templates (all
      // experts of a layer have one shape).
      const ExpertName first = parse_expert(name);
      NSA_CHECK(first.index >= 0, "[gather_tp] owned tensor '", name, "' is not an expert");
      if (experts_done.count(first.head)) continue;
      experts_done.insert(first.head);
      std::vector<std::pair<std::string, Tensor>> templates;  // tail -> this rank's tensor (first expert)
      for (const auto& [n, t] : local) {
        const ExpertName e = parse_expert(n);
        if (e.head == first.head && e.index == first.index) templates.emplace_back(e.tail, t);
      }
      for (int64_t e = 0; e < config.moe.n_experts; ++e) {
        for (const auto& [tail, like] : templates) {
          const std::string expert_name = first.head + std::to_string(e) + tail;
          const int owner = layout_of(expert_name).owner;
          Tensor buffer;
          if (owner == tp.rank()) {
            for (const auto& [n, t] : local) {
              if (n == expert_name) buffer = contiguous(t);
            }
            NSA_CHECK(buffer.defined(), "[gather_tp] rank ", tp.rank(), " owns '", expert_name,
                      "' but does not hold it");
          } else {
            buffer = empty(like.shape(), like.dtype(), like.device());
          }
          tp.broadcast(buffer, owner);
          out.emplace_back(expert_name, buffer);
        }
      }
    }
  }
  return out;
}

Tensor tp_local_part(const Tensor& full, const TpShard& shard, int tp_rank, int tp_size) {
  if (shard.kind != TpShard::Kind::split || tp_size == 1) return full;
  const int64_t n = full.size(shard.dim);
  return clone(narrow(full, shard.dim, shard_begin(n, tp_rank, tp_size), shard_size(n, tp_rank, tp_size)));
}

}  // namespace nsa::dist
