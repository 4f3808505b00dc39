// The kube source: informers for the five watched kinds (per watched
// namespace, or cluster-wide), whose changes are queued for the control
// thread (an eventfd wakes its poll loop). The control thread applies them to
// the same ObjectStore the file source feeds, and compiles.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sources/kube/informer.h"
#include "sources/kube/kube_client.h"

namespace ingressd::kube {

struct KubeSourceOptions {
  std::vector<std::string> namespaces;  // empty = cluster-wide
  InformerOptions informer;
};

// The changes one informer delivered together.
struct ChangeBatch {
  size_t informer = 0;
  bool first_sync = false;  // this batch completes the informer's initial list
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
  size_t informer_count() const { return informers_.size(); }
  const Informer& informer(size_t i) const { return *informers_[i]; }
  ObservedIngressStatus& ingress_status() { return observed_; }
  // ingressd_kube_* families: per informer restarts, relists, events, sync.
  void metrics(std::string& out) const;

 private:
  KubeSourceOptions opts_;
  std::vector<std::unique_ptr<Informer>> informers_;
  ObservedIngressStatus observed_;
  int efd_ = -1;
  std::mutex mu_;
  std::vector<ChangeBatch> queue_;
};

}  // namespace ingressd::kube
