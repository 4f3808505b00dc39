// explain(): which route a request takes and why the others do not. Used by
// `ingressd explain` and the admin port's /debug/explain.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "routing/compile.h"

namespace ingressd::routing {

struct Explanation {
  nlohmann::json json;
  std::string text;
};

// `url` is "http://host/path?query" or "/path" (then `host` gives the Host header).
Explanation explain(const Snapshot& snap, const CompileOptions& opts, const RouteTable& table, std::string_view url,
                    std::string_view host_header);

// Whether a rule path of this type matches a (normalised) request path, by the Ingress spec.
bool path_matches(std::string_view rule_path, model::PathType type, std::string_view request_path);

}  // namespace ingressd::routing
