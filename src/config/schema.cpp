// The schema table (one row per key, defaults from the Config struct) and key look-up with typo
// suggestions.
#include "config/schema.h"

#include <algorithm>
#include <numeric>

namespace nsa::config_detail {

// A row whose key is the field's path: KEY(model.d_model, "doc", ...) reads and writes config.model.d_model.
// clang-format off
#define KEY(path, ...) KeySpec{#path, [](Config& c) -> FieldRef { return &c.path; }, __VA_ARGS__}
// clang-format on

const std::vector<KeySpec>& schema() {
  using enum Bound;
  static const std::vector<KeySpec> rows = {
      KEY(seed, "seed of the run's random streams (weight initialisation, data order)", non_negative),

      KEY(model.vocab_size, "token ids the model knows: rows of the embedding and of the output layer",
          positive),
      KEY(model.d_model, "width of the residual stream", positive),
      KEY(model.n_layers, "transformer blocks", positive),
      KEY(model.n_heads, "query heads per attention layer", positive),
      KEY(model.n_kv_heads, "key/value heads (GQA groups); must divide n_heads", positive),
      KEY(model.head_dim, "query/key size per head; 0: d_model / n_heads", non_negative),
      KEY(model.v_head_dim, "value size per head; 0: the same as the query/key size", non_negative),
      KEY(model.ffn_hidden, "hidden size of the dense SwiGLU MLP", positive),
      KEY(model.norm_eps, "epsilon of RMSNorm", positive),
      KEY(model.rope_theta, "RoPE base frequency", positive),
      KEY(model.tie_embeddings, "the output layer reuses the token-embedding matrix"),
      KEY(model.init_std,
          "std of the normal weight initialisation; output projections get 1/sqrt(2·n_layers) of it",
          positive),

      KEY(attention.type, "full: causal softmax attention; nsa: Native Sparse Attention (docs/nsa.md)", none,
          {"full", "nsa"}),
      KEY(attention.nsa.cmp_block, "l: tokens per compression block", positive),
      KEY(attention.nsa.cmp_stride, "d: stride between compression blocks; divides cmp_block and slc_block",
          positive),
      KEY(attention.nsa.slc_block, "l': tokens per selection block", positive),
      KEY(attention.nsa.slc_top_n,
          "n: selection blocks per query, the forced initial and local ones included", positive),
      KEY(attention.nsa.slc_init_blocks, "leading blocks every query selects", non_negative),
      KEY(attention.nsa.slc_local_blocks, "most recent blocks (the query's own included) every query selects",
          non_negative),
      KEY(attention.nsa.window, "w: tokens in the sliding-window branch", positive),
      KEY(attention.nsa.separate_kv,
          "each branch has its own key/value projections (the paper); false: shared"),
      KEY(attention.nsa.cmp_hidden, "hidden width of the compression MLP φ; 0: the head dim", non_negative),

      KEY(moe.n_experts, "routed experts per MoE layer; 0: a dense MLP in every layer", non_negative),
      KEY(moe.top_k, "routed experts each token goes to", positive),
      KEY(moe.n_shared_experts, "experts every token goes through besides the routed ones", non_negative),
      KEY(moe.expert_hidden, "hidden size of one expert's SwiGLU MLP", positive),
      KEY(moe.first_k_dense, "the first k layers keep the dense MLP (model.ffn_hidden)", non_negative),
      KEY(moe.aux_loss_weight, "weight of the load-balancing loss added to the training loss", non_negative),
      KEY(moe.normalize_topk, "renormalise the k selected router probabilities to sum to 1"),

      KEY(data.train, "glob of the training shards (llm.c format)", non_empty),
      KEY(data.val, "glob of the validation shards; empty: no evaluation"),

      KEY(optimizer.lr, "peak learning rate (AdamW)", positive),
      KEY(optimizer.beta1, "AdamW decay of the first moment", unit_closed_open),
      KEY(optimizer.beta2, "AdamW decay of the second moment", unit_closed_open),
      KEY(optimizer.eps, "AdamW epsilon", positive),
      KEY(optimizer.weight_decay, "decoupled weight decay, not applied to the kinds in no_decay",
          non_negative),
      KEY(optimizer.grad_clip, "clip the global gradient norm to this; 0: no clipping", non_negative),
      KEY(optimizer.no_decay, "parameter kinds without weight decay", none, {"norm", "bias", "embedding"}),

      KEY(schedule.type,
          "learning rate after warm-up: cosine decay to min_lr_ratio·lr, constant, or wsd (constant, then a "
          "linear decay over the last decay_fraction of the steps)",
          none, {"cosine", "constant", "wsd"}),
      KEY(schedule.warmup_steps, "steps of linear warm-up from 0 to optimizer.lr", non_negative),
      KEY(schedule.min_lr_ratio, "final learning rate as a fraction of optimizer.lr (cosine, wsd)",
          unit_closed),
      KEY(schedule.decay_fraction, "wsd: fraction of training.max_steps spent decaying", unit_open_closed),

      KEY(training.max_steps, "optimizer steps of the run", positive),
      KEY(training.micro_batch_size, "sequences per forward/backward pass on one rank", positive),
      KEY(training.global_batch_size,
          "sequences per optimizer step over all ranks; a multiple of micro_batch_size (the rest is gradient "
          "accumulation)",
          positive),
      KEY(training.seq_len, "tokens per sequence", positive),
      KEY(training.device, "auto: cuda when a GPU is present, else cpu", none, {"auto", "cpu", "cuda"}),
      KEY(training.dtype, "compute dtype; auto: bf16 on cuda, f32 on cpu", none, {"auto", "f32", "bf16"}),
      KEY(training.eval_interval, "steps between evaluations on data.val; 0: none", non_negative),
      KEY(training.eval_batches, "micro-batches per evaluation", positive),

      KEY(checkpoint.dir, "directory of the checkpoints"),
      KEY(checkpoint.interval, "steps between checkpoints; 0: none", non_negative),
      KEY(checkpoint.keep, "the newest `keep` checkpoints are kept, older ones deleted", positive),
      KEY(checkpoint.resume, "never, or auto: continue from the newest checkpoint in dir when there is one",
          none, {"never", "auto"}),
      KEY(checkpoint.dtype, "storage dtype of the parameters", none, {"f32", "bf16"}),

      KEY(parallel.tensor_parallel_size,
          "ranks each layer is split over; divides n_heads, n_kv_heads, ffn_hidden (and expert_hidden, "
          "n_experts); data-parallel size = world size / this",
          positive),
      KEY(parallel.backend, "communicators: auto (nccl on cuda, mpi on cpu), mpi, nccl", none,
          {"auto", "mpi", "nccl"}),
      KEY(parallel.zero1, "ZeRO-1: shard the AdamW moments over the data-parallel ranks"),
      KEY(parallel.bucket_mb, "MB of gradients per data-parallel all-reduce bucket (overlapped with backward)",
          positive),

      KEY(logging.dir, "run directory: metrics.jsonl and the resolved config are written there"),
      KEY(logging.interval, "steps between log lines", positive),
      KEY(logging.progress, "progress bar: auto (when stdout is a terminal), on, off", none,
          {"auto", "on", "off"}),
  };
  return rows;
}

#undef KEY

ValueType KeySpec::type() const {
  Config probe;
  FieldRef ref = field(probe);
  switch (ref.index()) {
    case 0:
      return ValueType::integer;
    case 1:
      return ValueType::unsigned_integer;
    case 2:
      return ValueType::number;
    case 3:
      return ValueType::boolean;
    case 4:
      return allowed.empty() ? ValueType::string : ValueType::enumeration;
    default:
      return ValueType::string_list;
  }
}

namespace {

std::string joined(const std::vector<std::string_view>& values) {
  std::string out;
  for (std::string_view v : values) out += (out.empty() ? "" : ", ") + std::string(v);
  return out;
}

}  // namespace

std::string KeySpec::expected() const {
  switch (type()) {
    case ValueType::integer:
      return "an integer";
    case ValueType::unsigned_integer:
      return "a non-negative integer";
    case ValueType::number:
      return "a number";
    case ValueType::boolean:
      return "true or false";
    case ValueType::string:
      return "a string";
    case ValueType::enumeration:
      return "one of " + joined(allowed);
    case ValueType::string_list:
      if (allowed.empty()) return "a list of strings";
      return "a list of values from {" + joined(allowed) + "}, like [" + std::string(allowed.front()) + "]";
  }
  return "";
}

const KeySpec* find_key(std::string_view key) {
  for (const KeySpec& spec : schema())
    if (spec.key == key) return &spec;
  return nullptr;
}

namespace {

// The proper prefixes of the keys, in schema order: "model", "attention", "attention.nsa", ...
const std::vector<std::string>& sections() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const KeySpec& spec : schema()) {
      for (size_t dot = spec.key.find('.'); dot != std::string_view::npos;
           dot = spec.key.find('.', dot + 1)) {
        std::string prefix(spec.key.substr(0, dot));
        if (std::find(out.begin(), out.end(), prefix) == out.end()) out.push_back(prefix);
      }
    }
    return out;
  }();
  return names;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  // Levenshtein distance, one row at a time.
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

std::string_view last_part(std::string_view name) {
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

}  // namespace

bool is_section(std::string_view name) {
  const auto& names = sections();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string_view first_key_in(std::string_view section) {
  for (const KeySpec& spec : schema())
    if (spec.key.size() > section.size() && spec.key.starts_with(section) && spec.key[section.size()] == '.')
      return spec.key;
  return {};
}

std::string nearest_key(std::string_view name) {
  std::vector<std::string_view> candidates;
  for (const KeySpec& spec : schema()) candidates.push_back(spec.key);
  for (const std::string& section : sections()) candidates.push_back(section);

  // A known name in the wrong section ("training.lr", or "d_model" at the top level) is most likely the
  // key of that name elsewhere; otherwise the closest spelling wins (ties: the earlier row).
  std::string_view best;
  size_t best_distance = SIZE_MAX;
  bool best_same_leaf = false;
  for (std::string_view candidate : candidates) {
    bool same_leaf = last_part(candidate) == last_part(name);
    size_t distance = edit_distance(name, candidate);
    if ((same_leaf && !best_same_leaf) || (same_leaf == best_same_leaf && distance < best_distance)) {
      best = candidate;
      best_distance = distance;
      best_same_leaf = same_leaf;
    }
  }
  return std::string(best);
}

std::string_view bound_text(Bound bound, ValueType type) {
  bool integral = type == ValueType::integer || type == ValueType::unsigned_integer;
  switch (bound) {
    case Bound::none:
      return "";
    case Bound::positive:
      return integral ? ">= 1" : "> 0";
    case Bound::non_negative:
      return ">= 0";
    case Bound::unit_closed_open:
      return "in [0, 1)";
    case Bound::unit_closed:
      return "in [0, 1]";
    case Bound::unit_open_closed:
      return "in (0, 1]";
    case Bound::non_empty:
      return "not empty";
  }
  return "";
}

}  // namespace nsa::config_detail
