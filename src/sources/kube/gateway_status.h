// Gateway API status as the leader writes it: what compile() says an object's
// status is (routing::GatewayObjectStatus, conditions without times or
// generations) against what the API server has, into the status to PATCH, or
// nothing when they already agree.
//
// metav1.Condition (k8s.io/apimachinery/pkg/apis/meta/v1/types.go):
//   "observedGeneration represents the .metadata.generation that the
//    condition was set based upon";
//   "lastTransitionTime is the last time the condition transitioned from one
//    status to another".
// We keep lastTransitionTime when a condition's status and reason are what
// they were, and compare everything else, so that a steady cluster costs no
// writes.
//
// Routes are shared: HTTPRouteStatus.parents holds one entry per parentRef
// and controller ("implementations MUST ... not modify entries of other
// controllers"; RouteParentStatus.controllerName). A merge patch replaces a
// list whole, so the route's patch carries every other controller's entries
// as the API server had them, plus ours, with metadata.resourceVersion as a
// precondition (409 when someone wrote in between: read again, redo).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ingressd::kube {

// One object of ours and the status compile() gives it.
struct GatewayStatusWant {
  std::string kind;        // GatewayClass, Gateway, HTTPRoute, GRPCRoute
  std::string namespace_;  // "" for a GatewayClass
  std::string name;
  int64_t generation = 0;  // metadata.generation of the object compiled (0: unknown, not written)
  nlohmann::json status;   // routing::GatewayObjectStatus::status
};

bool is_route_kind(const std::string& kind);  // HTTPRoute, GRPCRoute

// The status to write, or nullopt when `observed` (the object's status as
// the API server has it; null when it has none) already says it, times aside.
// For a route the result's parents are the other controllers' entries of
// `observed` followed by ours. `now` is an RFC 3339 time.
std::optional<nlohmann::json> gateway_status_to_write(const GatewayStatusWant& want, const nlohmann::json& observed,
                                                      const std::string& controller_name, const std::string& now);

// A route that is no longer ours (none of its parents is one of our
// Gateways, or it is gone from our compile): its status without our parents
// entries, or nullopt when it has none of ours.
std::optional<nlohmann::json> route_status_without_ours(const nlohmann::json& observed,
                                                        const std::string& controller_name);

// The same JSON without any "lastTransitionTime" member, at any depth.
nlohmann::json without_transition_times(const nlohmann::json& j);

// GatewayStatusAddress entries for published load balancer entries ([{ip} |
// {hostname}], normalize_lb's form).
nlohmann::json gateway_addresses(const nlohmann::json& lb);

// The Gateway API objects' status as the informers last saw it (or as our
// own PATCH answered), with their resourceVersion and the API version they
// are watched at (for the PATCH path). Keyed by (kind, "namespace/name";
// "/name" for a GatewayClass).
struct ObservedGatewayObject {
  std::string api_version;  // "gateway.networking.k8s.io/v1"
  std::string plural;       // "httproutes"
  std::string resource_version;
  nlohmann::json status;  // null when absent
};

class ObservedGatewayStatus {
 public:
  void observe(const std::string& kind, const std::string& api_version, const std::string& plural,
               const nlohmann::json& obj, bool deleted);
  std::optional<ObservedGatewayObject> get(const std::string& kind, const std::string& id) const;
  std::vector<std::pair<std::string, std::string>> keys() const;
  void erase(const std::string& kind, const std::string& id);

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, ObservedGatewayObject> by_key_;
};

}  // namespace ingressd::kube
