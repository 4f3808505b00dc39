// Writes back to the cluster, from its own thread, and only while this
// replica leads: Ingress status.loadBalancer.ingress for the Ingresses we
// serve (cleared from those we stop serving), the Gateway API objects'
// status (gateway_status.h: conditions with observedGeneration and
// lastTransitionTime; our parents entries of routes), and core/v1 Events for
// diagnostics (deduplicated). Status is PATCHed (merge patch on the status
// subresource) only when it differs from what the API server has.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "sources/kube/gateway_status.h"
#include "sources/kube/kube_client.h"
#include "sources/kube/kube_source.h"
#include "sources/kube/leader.h"

namespace ingressd::kube {

struct StatusOptions {
  std::string publish_service;                  // NAMESPACE/NAME: copy its status.loadBalancer.ingress
  std::vector<std::string> publish_addresses;   // or these (IP → ip, otherwise hostname)
  std::string component = "ingressd";           // Event source / reportingController
  std::string identity;                         // reportingInstance
  bool write_status = true;                     // false: Events only (no publish address given)
  bool write_gateway_status = true;             // --update-status (addresses need no publish flag)
  std::string controller_name;                  // ours, in routes' status.parents[].controllerName
};

// A diagnostic about one object, to become an Event.
struct EventNote {
  std::string api_version = "networking.k8s.io/v1", kind = "Ingress";
  std::string namespace_, name, uid;
  std::string type = "Warning";  // Normal | Warning
  std::string reason, message;
  bool operator<(const EventNote& o) const {
    return std::tie(namespace_, name, uid, reason, message) < std::tie(o.namespace_, o.name, o.uid, o.reason, o.message);
  }
};

// status.loadBalancer.ingress for --publish-status-address values.
nlohmann::json addresses_to_lb(const std::vector<std::string>& addrs);
// The comparable form of a status.loadBalancer.ingress array: only ip and
// hostname, sorted; null/absent = [].
nlohmann::json normalize_lb(const nlohmann::json& lb);
// What to write for one Ingress: nullopt = leave it alone. `ours` = we serve
// it; `observed` = its status now; `publish` = our addresses (normalized).
// One we do not serve is cleared only when it shows exactly our addresses
// (we wrote them), so that another controller's status is never touched.
std::optional<nlohmann::json> status_to_write(bool ours, const nlohmann::json& observed, const nlohmann::json& publish);

class StatusWriter {
 public:
  StatusWriter(KubeClient& client, ObservedIngressStatus& observed, ObservedGatewayStatus& observed_gateway,
               LeaderElector* leader, StatusOptions opts);
  ~StatusWriter();
  void start();
  void stop();
  // From the control thread after each compile: the Ingresses we serve
  // ("namespace/name"), the diagnostics worth an Event, and the Gateway API
  // objects' status (nullopt: not every Gateway API informer has synced yet,
  // so leave their status as it is).
  void update(std::set<std::string> served, std::set<EventNote> notes,
              std::optional<std::vector<GatewayStatusWant>> gateway = std::nullopt);
  void poke();  // leadership changed, or the publish Service may have
  uint64_t status_writes() const { return status_writes_.load(); }
  uint64_t events_posted() const { return events_posted_.load(); }
  // Gateway API status PATCHes written, by kind (GatewayClass, Gateway, HTTPRoute, GRPCRoute).
  static constexpr const char* kGatewayKinds[] = {"GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute"};
  uint64_t gateway_status_writes(size_t kind_index) const { return gateway_writes_[kind_index].load(); }

 private:
  void run();
  void pass(KubeSession& s);
  bool publish_lb(KubeSession& s, nlohmann::json& out);
  void write_gateway_status(KubeSession& s, const std::vector<GatewayStatusWant>& wants, const nlohmann::json* publish);
  // PATCHes one object's status with what `compute` makes of its observed
  // status (nothing when it returns nullopt); a route's patch has its
  // resourceVersion as a precondition and is redone once after a 409.
  using ComputeStatus =
      std::function<std::optional<nlohmann::json>(const nlohmann::json& observed, const std::string& now)>;
  void patch_gateway_object(KubeSession& s, const std::string& kind, const std::string& id,
                            const ComputeStatus& compute);

  KubeClient& client_;
  ObservedIngressStatus& observed_;
  ObservedGatewayStatus& observed_gateway_;
  LeaderElector* leader_;  // null = no election: we always write
  StatusOptions opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false, have_input_ = false;
  std::atomic<bool> stop_{false};
  std::set<std::string> served_;
  std::set<EventNote> notes_;
  std::optional<std::vector<GatewayStatusWant>> gateway_;
  std::set<EventNote> posted_;  // notes posted while they stay current (writer thread only)
  std::atomic<uint64_t> status_writes_{0}, events_posted_{0};
  std::atomic<uint64_t> gateway_writes_[std::size(kGatewayKinds)];  // value-initialized (C++20)
  std::thread thread_;
};

}  // namespace ingressd::kube
