#include "dist/sharding.h"

#include <vector>

#include "core/error.h"

namespace nsa::dist {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

TpShard split(int dim) { return {TpShard::Kind::split, dim, 0, false}; }
TpShard replicated(bool partial_grad) { return {TpShard::Kind::replicated, 0, 0, partial_grad}; }

// "blocks.<i>.<rest>" -> rest ("" when the name is not a block parameter).
std::string block_rest(const std::string& name, int64_t n_layers) {
  if (!starts_with(name, "blocks.")) return "";
  const size_t dot = name.find('.', 7);
  if (dot == std::string::npos) return "";
  const std::string index = name.substr(7, dot - 7);
  if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) return "";
  if (std::stoll(index) >= n_layers) return "";
  return name.substr(dot + 1);
}

// SwiGLU weights: gate/up are column-parallel (rows split), down is row-parallel (columns split).
bool swiglu_shard(const std::string& rest, TpShard* out) {
  if (rest == "w_gate.weight" || rest == "w_up.weight") return *out = split(0), true;
  if (rest == "w_down.weight") return *out = split(1), true;
  return false;
}

}  // namespace

TpShard tp_shard(const std::string& name, const Config& config, int tp) {
  const bool nsa = config.attention.type == "nsa";
  if (name == "embed.weight" || (name == "lm_head.weight" && !config.model.tie_embeddings)) return split(0);
  if (name == "final_norm.weight") return replicated(false);
  const std::string rest = block_rest(name, config.model.n_layers);
  TpShard shard;
  if (rest == "attn_norm.weight" || rest == "mlp_norm.weight") return replicated(false);
  if (rest == "attn.wq.weight" || rest == "attn.wk.weight" || rest == "attn.wv.weight") return split(0);
  if (rest == "attn.wo.weight") return split(1);
  if (nsa && starts_with(rest, "attn.nsa.")) {
    const std::string p = rest.substr(9);
    if (p == "gate.weight") return split(0);  // rows are [head, branch]: whole heads per rank
    if (config.attention.nsa.separate_kv &&
        (p == "wk_cmp.weight" || p == "wv_cmp.weight" || p == "wk_slc.weight" || p == "wv_slc.weight")) {
      return split(0);
    }
    for (const char* phi : {"cmp_k.pos", "cmp_k.w1", "cmp_k.w2", "cmp_v.pos", "cmp_v.w1", "cmp_v.w2"}) {
      if (p == phi) return replicated(true);  // shared by all heads; each rank sees only its heads
    }
  }
  if (starts_with(rest, "mlp.") && swiglu_shard(rest.substr(4), &shard)) return shard;
  if (config.moe.enabled()) {
    if (rest == "moe.router.weight") return replicated(true);
    if (starts_with(rest, "moe.shared.") && swiglu_shard(rest.substr(11), &shard)) return shard;
    if (starts_with(rest, "moe.experts.")) {
      const std::string tail = rest.substr(12);
      const size_t dot = tail.find('.');
      if (dot != std::string::npos && dot > 0 && tail.substr(0, dot).find_first_not_of("0123456789") ==
                                                     std::string::npos) {
        const int64_t e = std::stoll(tail.substr(0, dot));
        TpShard inner;
        if (e < config.moe.n_experts && swiglu_shard(tail.substr(dot + 1), &inner)) {
          const int64_t per_rank = config.moe.n_experts / tp;
          return {TpShard::Kind::owned, 0, static_cast<int>(e / per_rank), false};
        }
      }
    }
  }
  throw InputError(str("tensor parallelism: no sharding rule for parameter '", name,
                       "' (not a parameter of this model?)"));
}

void validate_tp(const Config& config, int tp) {
  const std::string key = str(config.source.empty() ? "config" : config.source, ": parallel.tensor_parallel_size");
  if (tp < 1) throw InputError(str(key, ": expected >= 1, got ", tp));
  if (config.model.n_kv_heads % tp != 0) {
    throw InputError(str(key, ": ", tp, " does not divide model.n_kv_heads = ", config.model.n_kv_heads,
                         " (attention is split by whole GQA groups)"));
  }
  if (config.moe.enabled() && config.moe.n_experts % tp != 0) {
    throw InputError(str(key, ": ", tp, " does not divide moe.n_experts = ", config.moe.n_experts,
                         " (routed experts are split whole across TP ranks)"));
  }
  if (config.model.vocab_size < tp) {
    throw InputError(str(key, ": ", tp, " exceeds model.vocab_size = ", config.model.vocab_size));
  }
}

}  // namespace nsa::dist
