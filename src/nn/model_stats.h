// Parameter counts and training FLOPs of a model, computed from its config alone (so the 27B paper config
// can be counted without being built). Tests check the counts against built models.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace nsa::nn {

struct ModelStats {
  int64_t params = 0;            // every parameter
  int64_t active_params = 0;     // used per token (MoE: k routed experts + shared + router)
  int64_t embedding_params = 0;  // the token embedding (plus an untied LM head)
  // Training FLOPs per token (forward + backward = 3× forward): 6 per active matmul weight (the LM head
  // included, tied or not) plus the attention's score and value products over the keys each query sees,
  // averaged over the positions of a seq_len sequence.
  double train_flops_per_token = 0;
  double attention_flops_per_token = 0;  // the attention part of the above
};

ModelStats model_stats(const Config& config);

// Average number of keys one query attends to per branch, over positions 0..seq_len-1 (full attention:
// (seq_len+1)/2). For NSA: compressed blocks + selected tokens + window tokens.
double average_attended_keys(const Config& config, int64_t seq_len);

}  // namespace nsa::nn
