// Whole-config checks. A key's own bound always applies (the defaults satisfy every bound); a rule that
// relates keys of a part that can be switched off (attention.nsa, moe) applies only while it is on.
#include "config/validate.h"

#include <algorithm>
#include <variant>

#include "config/schema.h"
#include "config/values.h"

namespace nsa::config_detail {
namespace {

class Checker {
 public:
  explicit Checker(const KeyMessage& message) : message_(message) {}

  [[noreturn]] void fail(std::string_view key, const std::string& what) const {
    throw InputError(message_(key, what));
  }

  void check(bool ok, std::string_view key, const std::string& what) const {
    if (!ok) fail(key, what);
  }

  // `key` (value `value`) must be a multiple of `divisor_key` (value `divisor`).
  void multiple(std::string_view key, int64_t value, std::string_view divisor_key, int64_t divisor,
                std::string_view when = "") const {
    check(value % divisor == 0, key,
          str("must be a multiple of ", divisor_key, " (", divisor, ")", when, ", got ", value));
  }

 private:
  const KeyMessage& message_;
};

bool within(double value, Bound bound) {
  switch (bound) {
    case Bound::positive:
      return value > 0;
    case Bound::non_negative:
      return value >= 0;
    case Bound::unit_closed_open:
      return value >= 0 && value < 1;
    case Bound::unit_closed:
      return value >= 0 && value <= 1;
    case Bound::unit_open_closed:
      return value > 0 && value <= 1;
    case Bound::none:
    case Bound::non_empty:
      return true;
  }
  return true;
}

bool is_allowed(const KeySpec& spec, const std::string& value) {
  return std::find(spec.allowed.begin(), spec.allowed.end(), value) != spec.allowed.end();
}

// The bound or allowed values of one key.
void check_key(const Checker& checker, const KeySpec& spec, Config& config) {
  std::string must = str("must be ", bound_text(spec.bound, spec.type()), ", got ");
  FieldRef field = spec.field(config);
  if (auto* integer = std::get_if<int64_t*>(&field)) {
    checker.check(within(static_cast<double>(**integer), spec.bound), spec.key,
                  must + std::to_string(**integer));
  } else if (auto* number = std::get_if<double*>(&field)) {
    checker.check(within(**number, spec.bound), spec.key, must + format_number(**number));
  } else if (auto* text = std::get_if<std::string*>(&field)) {
    checker.check(spec.bound != Bound::non_empty || !(*text)->empty(), spec.key, "must not be empty");
    if (!spec.allowed.empty())
      checker.check(is_allowed(spec, **text), spec.key,
                    str("expected ", spec.expected(), ", got '", **text, "'"));
  } else if (auto* list = std::get_if<std::vector<std::string>*>(&field)) {
    if (spec.allowed.empty()) return;
    for (const std::string& item : **list)
      checker.check(is_allowed(spec, item), spec.key,
                    str("expected ", spec.expected(), ", got '", item, "'"));
  }
}

void check_model(const Checker& checker, const ModelConfig& model) {
  checker.multiple("model.n_heads", model.n_heads, "model.n_kv_heads", model.n_kv_heads);
  if (model.head_dim == 0)
    checker.multiple("model.d_model", model.d_model, "model.n_heads", model.n_heads,
                     " when model.head_dim is 0");
}

void check_nsa(const Checker& checker, const NsaConfig& nsa) {
  checker.multiple("attention.nsa.cmp_block", nsa.cmp_block, "attention.nsa.cmp_stride", nsa.cmp_stride);
  // Selection blocks are scored from the compression blocks that cover them: their starts must line up.
  checker.multiple("attention.nsa.slc_block", nsa.slc_block, "attention.nsa.cmp_stride", nsa.cmp_stride);
  int64_t forced = nsa.slc_init_blocks + nsa.slc_local_blocks;
  checker.check(
      nsa.slc_top_n >= forced, "attention.nsa.slc_top_n",
      str("must be at least slc_init_blocks + slc_local_blocks (", forced, "), got ", nsa.slc_top_n));
}

void check_moe(const Checker& checker, const MoeConfig& moe, const ModelConfig& model) {
  checker.check(moe.top_k <= moe.n_experts, "moe.top_k",
                str("must be at most moe.n_experts (", moe.n_experts, "), got ", moe.top_k));
  checker.check(moe.first_k_dense <= model.n_layers, "moe.first_k_dense",
                str("must be at most model.n_layers (", model.n_layers, "), got ", moe.first_k_dense));
}

void check_parallel(const Checker& checker, const Config& config) {
  int64_t tp = config.parallel.tensor_parallel_size;
  struct Split {
    std::string_view key;
    int64_t size;
    std::string_view why;
  };
  std::vector<Split> splits = {
      {"model.n_kv_heads", config.model.n_kv_heads, " (a GQA group never spans ranks)"},
      {"model.n_heads", config.model.n_heads, ""},
      {"model.ffn_hidden", config.model.ffn_hidden, ""},
  };
  if (config.moe.enabled()) {
    splits.push_back({"moe.expert_hidden", config.moe.expert_hidden, ""});
    splits.push_back({"moe.n_experts", config.moe.n_experts, " (routed experts are split whole)"});
  }
  for (const Split& split : splits)
    checker.check(split.size % tp == 0, "parallel.tensor_parallel_size",
                  str("must divide ", split.key, " (", split.size, ")", split.why, ", got ", tp));
}

}  // namespace

void validate(const Config& config, const KeyMessage& message) {
  Checker checker(message);
  Config fields = config;  // the schema's accessors take a mutable Config
  for (const KeySpec& spec : schema()) check_key(checker, spec, fields);

  check_model(checker, config.model);
  checker.multiple("training.global_batch_size", config.training.global_batch_size,
                   "training.micro_batch_size", config.training.micro_batch_size);
  if (config.attention.type == "nsa") check_nsa(checker, config.attention.nsa);
  if (config.moe.enabled()) check_moe(checker, config.moe, config.model);
  const CheckpointConfig& checkpoint = config.checkpoint;
  checker.check(!checkpoint.dir.empty() || (checkpoint.interval == 0 && checkpoint.resume == "never"),
                "checkpoint.dir",
                "must not be empty when checkpoint.interval > 0 or checkpoint.resume is auto");
  check_parallel(checker, config);
}

}  // namespace nsa::config_detail
