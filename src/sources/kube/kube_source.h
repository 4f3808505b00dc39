// The kube source: informers for the five watched kinds (per watched
// namespace, or cluster-wide), and for the Gateway API's kinds while the API
// server serves them (discovery at start, then again every
// discovery_period_s: CRDs installed later are picked up, and a kind whose
// CRD goes away is forgotten). Changes are queued for the control thread (an
// eventfd wakes its poll loop), which applies them to the same ObjectStore
// the file source feeds, and compiles.
//
// Readiness waits for the first discovery and for every informer it and the
// core kinds started with; informers added later do not hold reloads up.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sources/kube/api_discovery.h"
#include "sources/kube/gateway_status.h"
#include "sources/kube/informer.h"
#include "sources/kube/kube_client.h"

namespace ingressd::kube {

struct KubeSourceOptions {
  std::vector<std::string> namespaces;  // empty = cluster-wide
  InformerOptions informer;
  int discovery_period_s = 60;  // Gateway API discovery again this often (0: at start only)
};

// The changes one informer delivered together.
struct ChangeBatch {
  size_t informer = 0;
  bool first_sync = false;  // this batch completes the informer's initial list
  bool discovered = false;  // no changes: the first discovery is done (readiness may follow)
  std::chrono::steady_clock::time_point received;
  std::vector<Change> changes;
};

// Ingress status as the API server has it (status.loadBalancer.ingress), kept
// from the Ingress informer's objects: the status writer compares against it.
class ObservedIngressStatus {
 public:
  void observe(const nlohmann::json& obj, bool deleted);
  // Returns the observed status.loadBalancer.ingress array (null when unknown)
  // and the object's uid.
  bool get(const std::string& id, nlohmann::json& lb, std::string& uid) const;
  void set(const std::string& id, const nlohmann::json& lb);  // after our own PATCH
  std::vector<std::string> ids() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::pair<nlohmann::json, std::string>> by_id_;
};

class KubeSource {
 public:
  KubeSource(KubeClient& client, KubeSourceOptions opts);
  ~KubeSource();
  void start();
  void stop();
  int fd() const { return efd_; }
  // Takes every queued batch (and clears the eventfd).
  std::vector<ChangeBatch> drain();
  // Informers are only ever added (an index stays valid); one whose kind is
  // no longer served is retired (stopped, its objects deleted).
  size_t informer_count() const;
  // Whether the first discovery is done, and how many informers (indices
  // 0..n-1) readiness waits for: the core kinds and the Gateway API kinds
  // that first discovery found.
  bool discovered() const { return discovered_.load(); }
  size_t required_count() const;
  // The indices of the Gateway API informers now running.
  std::vector<size_t> gateway_informers() const;
  bool gateway_api_served() const { return gateway_served_.load(); }
  ObservedIngressStatus& ingress_status() { return observed_; }
  ObservedGatewayStatus& gateway_status() { return observed_gateway_; }
  // ingressd_kube_* families: per informer restarts, relists, events, sync.
  void metrics(std::string& out) const;

 private:
  struct Slot {
    std::unique_ptr<Informer> informer;
    bool gateway = false;  // from discovery
    bool retired = false;
  };
  size_t add_informer(const ResourceInfo& r, bool gateway);  // informers_mu_ held
  void push(ChangeBatch&& b);
  void discovery_loop();
  std::optional<GatewayApiServed> discover(KubeSession& s, bool& warned);
  void apply_discovery(const GatewayApiServed& served);
  bool sleep_ms(int ms);  // false when stopping; returns early when poked
  void poke_discovery();  // a Gateway API informer got a 404: discover again now

  KubeClient& client_;
  KubeSourceOptions opts_;
  mutable std::mutex informers_mu_;
  std::vector<Slot> informers_;
  size_t required_ = 0;
  bool started_ = false;
  std::atomic<bool> discovered_{false}, gateway_served_{false}, stop_{false};
  std::optional<GatewayApiServed> last_served_;  // discovery thread only
  std::mutex stop_mu_;
  bool poked_ = false;  // stop_mu_
  std::condition_variable stop_cv_;
  std::thread discovery_;
  ObservedIngressStatus observed_;
  ObservedGatewayStatus observed_gateway_;
  int efd_ = -1;
  std::mutex mu_;
  std::vector<ChangeBatch> queue_;
};

}  // namespace ingressd::kube
