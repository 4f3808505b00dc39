// Request-path and Host normalisation, done before matching so that a rule
// cannot be bypassed by spelling a path differently.
#pragma once
#include <string>
#include <string_view>

namespace ingressd::routing {

enum class PathVerdict {
  Ok,            // `out` holds the normalised path
  Unchanged,     // nothing to normalise: use the input as is (fast path; `out` untouched)
  BadEncoding,   // invalid percent-encoding → 400
  EncodedSlash,  // %2F or %5C (or a raw backslash) → 400 by default
  NotAbsolute,   // does not start with '/' → 400
};

// RFC 3986 §6.2.2: percent-encoded unreserved characters are decoded, other
// escapes are kept (hex made upper-case), dot-segments are removed (§5.2.4),
// also when the dots were percent-encoded. `path` excludes the query.
PathVerdict normalize_path(std::string_view path, std::string& out);

// Host header → the name matched against rules: lower-cased, port removed,
// one trailing dot removed. IPv6 literals keep their brackets. Returns false
// when the value is not a valid host.
bool normalize_host(std::string_view host, std::string& out);

}  // namespace ingressd::routing
