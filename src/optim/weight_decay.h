// Which parameters get weight decay: all except the kinds listed in optimizer.no_decay, matched on the
// parameter's dotted name:
//   norm       the name contains "norm"                  (RMSNorm gains)
//   bias       the name is "bias" or ends in ".bias"
//   embedding  the name contains "embed"                 (token embeddings, and the tied output head)
#pragma once

#include <string>
#include <vector>

namespace nsa {

// Throws InputError for a kind other than norm, bias, embedding.
bool uses_weight_decay(const std::string& name, const std::vector<std::string>& no_decay);

}  // namespace nsa
