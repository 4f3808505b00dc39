// Leader election with a coordination.k8s.io/v1 Lease, the way client-go's
// leaderelection does it: every replica serves traffic; only the holder of
// the Lease writes Ingress status and Events. A lease is taken when it is
// free or has not been renewed for leaseDurationSeconds (as observed on our
// own clock: clocks of replicas need not agree); writes use the Lease's
// resourceVersion, so two candidates cannot both win (409 Conflict).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "sources/kube/kube_client.h"

namespace ingressd::kube {

// "15s", "2m", "500ms", "1h", or a bare number of seconds.
std::optional<int64_t> parse_duration_ms(std::string_view s);
// metav1.MicroTime: "2026-01-02T15:04:05.123456Z".
std::string micro_time(int64_t unix_us);
int64_t now_unix_us();

struct LeaderOptions {
  std::string namespace_;
  std::string name = "ingressd-leader";
  std::string identity;  // this replica (pod name + random suffix)
  int64_t lease_duration_ms = 15000, renew_deadline_ms = 10000, retry_period_ms = 2000;
};

// What to do with a Lease as read, at local time `now_ms`: pure, unit-tested.
struct LeaseView {
  std::string holder;
  std::string renew_time;       // as written
  int64_t lease_duration_s = 0;
};
struct LeaseObservation {
  std::string holder, renew_time;
  int64_t observed_at_ms = 0;  // when we last saw holder/renew_time change
};
// Whether we may write ourselves into this lease now.
bool may_acquire(const LeaseView& l, const std::string& me, LeaseObservation& obs, int64_t now_ms,
                 int64_t default_duration_ms);

class LeaderElector {
 public:
  LeaderElector(KubeClient& client, LeaderOptions opts);
  ~LeaderElector();
  void start();
  void stop();  // releases the lease when held
  // Leader only while the last successful renewal is younger than the renew
  // deadline, whatever the elector thread is doing (a hung request must not
  // keep a replica writing after another one may have taken the lease).
  bool is_leader() const;
  uint64_t transitions() const { return transitions_.load(); }
  // Woken on every leadership change.
  void set_on_change(std::function<void(bool)> f) { on_change_ = std::move(f); }

 private:
  void run();
  bool try_acquire_or_renew(KubeSession& s, int timeout_ms);
  void set_leader(bool v);
  void release(KubeSession& s);

  KubeClient& client_;
  LeaderOptions opts_;
  std::atomic<bool> leader_{false};
  std::atomic<uint64_t> transitions_{0};
  std::function<void(bool)> on_change_;
  LeaseObservation obs_;
  int64_t last_renew_ms_ = 0;
  std::atomic<int64_t> leader_until_ms_{0};  // steady ms: start of the last successful renewal + renew deadline
  bool held_by_other_ = false;  // the last read showed a live lease of another replica
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace ingressd::kube
