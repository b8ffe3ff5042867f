#include "core/random.h"

namespace nsa {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

}  // namespace nsa
