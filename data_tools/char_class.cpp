#include "char_class.h"

#include <algorithm>

namespace nsa::data_tools {

namespace {

struct ClassRange {
  uint32_t first, last;
  CharClass cls;
};

constexpr ClassRange kRanges[] = {
#include "unicode/char_classes.inc"
};

constexpr bool sorted_and_disjoint() {
  for (size_t i = 0; i < std::size(kRanges); ++i) {
    if (kRanges[i].first > kRanges[i].last) return false;
    if (i > 0 && kRanges[i - 1].last >= kRanges[i].first) return false;
  }
  return true;
}
static_assert(sorted_and_disjoint(), "unicode/char_classes.inc must hold sorted, disjoint ranges");

}  // namespace

CharClass non_ascii_char_class(uint32_t code_point) {
  // The first range that ends at or after the code point; it holds the code point if it starts before it.
  const ClassRange* r =
      std::lower_bound(std::begin(kRanges), std::end(kRanges), code_point,
                       [](const ClassRange& range, uint32_t cp) { return range.last < cp; });
  return r != std::end(kRanges) && r->first <= code_point ? r->cls : CharClass::kOther;
}

}  // namespace nsa::data_tools
