// The no-decay rules (weight_decay.h).
#include "optim/weight_decay.h"

#include "core/error.h"

namespace nsa {

bool uses_weight_decay(const std::string& name, const std::vector<std::string>& no_decay) {
  for (const std::string& kind : no_decay) {
    bool matches = false;
    if (kind == "norm") {
      matches = name.find("norm") != std::string::npos;
    } else if (kind == "bias") {
      matches = name == "bias" || name.ends_with(".bias");
    } else if (kind == "embedding") {
      matches = name.find("embed") != std::string::npos;
    } else {
      throw InputError(
          str("optimizer.no_decay: unknown parameter kind '", kind, "', expected norm, bias or embedding"));
    }
    if (matches) return false;
  }
  return true;
}

}  // namespace nsa
