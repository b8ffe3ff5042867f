#include "core/device.h"

#include "core/error.h"

namespace nsa {

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string n = text.substr(5);
    NSA_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos,
              "[device] expected cpu, cuda or cuda:N, got '", text, "'");
    return Device::cuda(std::stoi(n));
  }
  NSA_FAIL("[device] expected cpu, cuda or cuda:N, got '", text, "'");
}

}  // namespace nsa
