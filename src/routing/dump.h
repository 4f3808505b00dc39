// Human- and machine-readable views of a compiled table (golden tests,
// `ingressd routes`, the admin port).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "routing/compile.h"

namespace ingressd::routing {

// One line per route, sorted: "host path type -> ns/svc:port [endpoints] (ingress ns/name rule R path P)".
std::string dump_text(const RouteTable& t);
nlohmann::json dump_json(const RouteTable& t);
nlohmann::json diagnostics_json(const Diagnostics& d);

}  // namespace ingressd::routing
