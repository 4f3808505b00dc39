#include "core/diagnostic.h"

#include <fmt/format.h>

namespace ingressd {

std::string Diagnostic::str() const {
  std::string where;
  if (!file.empty()) where = line > 0 ? fmt::format("{}:{}: ", file, line) : file + ": ";
  std::string what = object.empty() ? "" : object + ": ";
  return fmt::format("{}{}: {}{}", where, severity_name(severity), what, message);
}

}  // namespace ingressd
