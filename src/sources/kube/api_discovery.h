// Which Gateway API resources the API server serves, from its discovery
// documents (GET /apis/gateway.networking.k8s.io/v1 and /v1beta1, each an
// APIResourceList), and so which of them operator mode watches. The Gateway
// API is CRDs: a cluster may have none of them, some (GRPCRoute and
// BackendTLSPolicy came later), or only v1beta1 (before v1.0).
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sources/kube/informer.h"
#include "sources/kube/kube_client.h"

namespace ingressd::kube {

inline constexpr const char* kGatewayGroup = "gateway.networking.k8s.io";

// The resources one discovery answer lists (subresources such as
// "httproutes/status" left out): an empty set for a 404 (the group version is
// not served), nullopt when the answer says nothing either way (a transport
// error, a 5xx, a body that is not an APIResourceList; `err` says which).
std::optional<std::set<std::string>> served_resources(const HttpResult& r, std::string& err);

struct GatewayApiServed {
  std::set<std::string> v1, v1beta1;
  bool any() const { return !v1.empty() || !v1beta1.empty(); }
  bool operator==(const GatewayApiServed&) const = default;
};

// What to watch: GatewayClass (cluster), Gateway, HTTPRoute, ReferenceGrant at
// v1 where it is served, else v1beta1; GRPCRoute and BackendTLSPolicy at v1
// when served; and, when any of them is, the core Namespaces (their labels
// select routes for listeners' allowedRoutes). Empty when none is served.
std::vector<ResourceInfo> gateway_resources(const GatewayApiServed& s);

// "gatewayclasses (v1), httproutes (v1beta1), ..." for the log.
std::string describe_resources(const std::vector<ResourceInfo>& rs);

}  // namespace ingressd::kube
