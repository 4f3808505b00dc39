// The Gateway API half of compile(): GatewayClasses, Gateways, HTTPRoutes and
// ReferenceGrants of a snapshot into the same RouteTable as the Ingresses,
// through the same route actions (an HTTPRoute filter and the ingress-nginx
// annotation that does the same thing are one RouteAction field), and the
// status of every object as the Gateway API defines it. Pure, like compile().
//
// How the objects map onto ingressd (docs/gateway-api.md):
//   - every Gateway of our GatewayClasses is served on ingressd's listeners:
//     an HTTP listener on port 80 is the --http-port, an HTTPS listener on
//     443 the --https-port (the Service maps them); other ports and protocols
//     are listeners not accepted (PortUnavailable / UnsupportedProtocol);
//   - a Route's rules become route candidates on each hostname of its
//     hostnames ∩ the hostnames of the listeners it attaches to, limited to
//     those listeners (plain, TLS or both);
//   - precedence is the spec's: the most specific hostname, then Exact, then
//     the longest prefix, then method, most header matches, most query
//     matches, the oldest Route, namespace/name, rule and match order.
//     On the same host and path an Ingress path comes first (reported).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/diagnostic.h"
#include "model/snapshot.h"
#include "routing/route_table.h"

namespace ingressd::routing {

struct CompileOptions;
struct TlsBinding;

// The status of one Gateway API object, in the API's own shape
// (GatewayClassStatus, GatewayStatus, HTTPRouteStatus), for `check -o json`
// and the operator's status writer.
struct GatewayObjectStatus {
  std::string kind;  // GatewayClass, Gateway, HTTPRoute, GRPCRoute
  std::string namespace_;
  std::string name;
  nlohmann::json status;
};

// What the Gateway API compile needs from compile(): a Service port →
// Backend resolver (shared with the Ingresses, so one Service port is one
// Backend), the table and the TLS bindings.
struct GatewayCompileContext {
  const Snapshot& snap;
  const CompileOptions& opts;
  TableBuilder& builder;
  Diagnostics& diags;
  std::vector<TlsBinding>& tls;
  // The backend for Service `ns/name` port `port`; never null (a Backend
  // without endpoints says why in `unavailable`).
  std::function<const Backend*(const std::string& ns, const std::string& name, int32_t port)> service_backend;
};

// [{"kind", "namespace", "name", "status"}], as `check -o json` and the admin port show them.
nlohmann::json gateway_status_json(const std::vector<GatewayObjectStatus>& s);
// One line per object and condition that is not as it should be, for `check`'s text output.
std::string gateway_status_text(const std::vector<GatewayObjectStatus>& s);

void compile_gateway_api(GatewayCompileContext& ctx, std::vector<GatewayObjectStatus>& out);

// Gateway API hostname intersection (a listener's hostname with a route's):
// wildcards match any number of labels; the more specific name is the result.
// False when they do not intersect. "" = no hostname (matches everything).
bool intersect_hostnames(const std::string& listener, const std::string& route, std::string& out);

}  // namespace ingressd::routing
