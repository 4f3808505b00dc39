#include "sources/kube/api_discovery.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace ingressd::kube {

std::optional<std::set<std::string>> served_resources(const HttpResult& r, std::string& err) {
  if (r.status == 404) return std::set<std::string>{};
  if (!r.ok()) {
    err = r.status == 0 ? r.error : fmt::format("HTTP {}", r.status);
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("resources") || !j["resources"].is_array()) {
    err = "the answer is not an APIResourceList";
    return std::nullopt;
  }
  std::set<std::string> out;
  for (const auto& res : j["resources"]) {
    std::string name = json_str(res, "name");
    if (!name.empty() && name.find('/') == std::string::npos) out.insert(name);
  }
  return out;
}

std::vector<ResourceInfo> gateway_resources(const GatewayApiServed& s) {
  struct Wanted {
    model::Kind kind;
    const char* kind_name;
    const char* plural;
    bool namespaced;
    bool v1beta1_too;  // the decoder reads v1beta1 of it (the same schema)
  };
  static const Wanted kWanted[] = {
      {model::Kind::GatewayClass, "GatewayClass", "gatewayclasses", false, true},
      {model::Kind::Gateway, "Gateway", "gateways", true, true},
      {model::Kind::HTTPRoute, "HTTPRoute", "httproutes", true, true},
      {model::Kind::ReferenceGrant, "ReferenceGrant", "referencegrants", true, true},
      {model::Kind::GRPCRoute, "GRPCRoute", "grpcroutes", true, false},
      {model::Kind::BackendTLSPolicy, "BackendTLSPolicy", "backendtlspolicies", true, false},
  };
  std::vector<ResourceInfo> out;
  for (const Wanted& w : kWanted) {
    std::string version;
    if (s.v1.count(w.plural)) version = "v1";
    else if (w.v1beta1_too && s.v1beta1.count(w.plural)) version = "v1beta1";
    else continue;
    out.push_back({w.kind, fmt::format("{}/{}", kGatewayGroup, version), w.kind_name, w.plural, w.namespaced, ""});
  }
  if (!out.empty()) out.push_back({model::Kind::Namespace, "v1", "Namespace", "namespaces", false, ""});
  return out;
}

std::string describe_resources(const std::vector<ResourceInfo>& rs) {
  std::string out;
  for (const ResourceInfo& r : rs) {
    size_t slash = r.api_version.rfind('/');
    out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", r.plural,
                       slash == std::string::npos ? r.api_version : r.api_version.substr(slash + 1));
  }
  return out;
}

}  // namespace ingressd::kube
