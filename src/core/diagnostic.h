// A diagnostic is how bad input becomes status instead of failure: it names
// where (file:line), what (the object), and why.
#pragma once
#include <string>
#include <vector>

namespace ingressd {

enum class Severity { Error, Warning, Info };
inline const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Info: return "info";
  }
  return "?";
}

struct Diagnostic {
  Severity severity = Severity::Error;
  std::string file;    // "" when not from a file
  int line = 0;        // 1-based, 0 = unknown
  std::string object;  // "Ingress default/foo" or "" when the object could not be identified
  std::string reason;  // short machine word: Invalid, Conflict, BackendNotFound, ...
  std::string message;

  std::string str() const;  // "file:line: error: Ingress default/foo: message"
  bool operator==(const Diagnostic&) const = default;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace ingressd
