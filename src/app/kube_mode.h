// Operator mode's wiring for `serve`: the API client, the informers (the kube
// source), leader election and the status writer, and what the control loop
// asks of them. Everything downstream of the ObjectStore is the same as in
// file mode.
#pragma once
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "app/commands.h"
#include "app/config_state.h"
#include "sources/kube/kube_source.h"
#include "sources/kube/leader.h"
#include "sources/kube/status_writer.h"
#include "sources/object_store.h"

namespace ingressd {

class KubeMode {
 public:
  explicit KubeMode(const ServeOptions& o) : o_(o) {}
  ~KubeMode();
  bool start(std::string& err);  // reads the config; starts informers, election, status writer
  void stop();                   // releases the lease
  int fd() const { return source_ ? source_->fd() : -1; }
  std::string describe() const;
  // Applies queued changes to the store (uncommitted). Returns whether any
  // changed it; `oldest` is set to when the oldest of them arrived.
  bool drain_into(ObjectStore& store, std::chrono::steady_clock::time_point& oldest);
  // The first discovery is done and every informer readiness waits for
  // (KubeSource::required_count) has had its first list applied.
  bool synced() const;
  // After a compile: hands the served Ingresses and the diagnostics to the
  // status writer; `lag` = from the arrival of the oldest event in this table
  // to the table's publication.
  void after_compile(const LoadOutcome& out, const Snapshot& snap, std::chrono::steady_clock::duration lag);
  void metrics(std::string& out) const;  // ingressd_kube_*, ingressd_leader
  // Decoding errors of objects in the cluster, for the compile's diagnostics.
  Diagnostics invalid_objects() const;

 private:
  bool gateway_synced() const;  // every running Gateway API informer has had its first list applied
  // The Gateway API status to write after a compile (nullopt: not synced).
  std::optional<std::vector<kube::GatewayStatusWant>> gateway_wants(const LoadOutcome& out, const Snapshot& snap) const;

  const ServeOptions& o_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<kube::KubeSource> source_;
  std::unique_ptr<kube::LeaderElector> leader_;
  std::unique_ptr<kube::StatusWriter> status_;
  // Objects the API server has but we could not decode, with why.
  struct Invalid {
    Diagnostics errors;
    std::optional<model::Ingress> ingress;
  };
  std::map<model::ObjectKey, Invalid> invalid_;
  std::vector<bool> synced_;  // by informer index: its first list is in the store
  bool all_synced_logged_ = false;
  bool discovered_ = false;  // the source's discovery marker has been drained
  std::atomic<int64_t> last_lag_us_{0};
  std::atomic<uint64_t> lag_count_{0}, lag_sum_us_{0}, applied_{0};
};

}  // namespace ingressd
