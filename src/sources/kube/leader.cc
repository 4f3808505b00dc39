#include "sources/kube/leader.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/strings.h"
#include "sources/kube/informer.h"

namespace ingressd::kube {
namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::optional<int64_t> parse_duration_ms(std::string_view s) {
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  while (i < s.size() && (isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = 0;
  try {
    v = std::stod(std::string(s.substr(0, i)));
  } catch (...) {
    return std::nullopt;
  }
  std::string_view unit = s.substr(i);
  double mul = 0;
  if (unit.empty() || unit == "s") mul = 1000;
  else if (unit == "ms") mul = 1;
  else if (unit == "m") mul = 60000;
  else if (unit == "h") mul = 3600000;
  else return std::nullopt;
  return static_cast<int64_t>(v * mul);
}

int64_t now_unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string micro_time(int64_t unix_us) {
  time_t secs = static_cast<time_t>(unix_us / 1000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, static_cast<int>(unix_us % 1000000));
}

bool may_acquire(const LeaseView& l, const std::string& me, LeaseObservation& obs, int64_t now_ms,
                 int64_t default_duration_ms) {
  if (l.holder != obs.holder || l.renew_time != obs.renew_time || obs.observed_at_ms == 0) {
    obs.holder = l.holder;
    obs.renew_time = l.renew_time;
    obs.observed_at_ms = now_ms;
  }
  if (l.holder.empty() || l.holder == me) return true;
  int64_t duration = l.lease_duration_s > 0 ? l.lease_duration_s * 1000 : default_duration_ms;
  return now_ms - obs.observed_at_ms > duration;
}

LeaderElector::LeaderElector(KubeClient& client, LeaderOptions opts) : client_(client), opts_(std::move(opts)) {}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::start() { thread_ = std::thread([this] { run(); }); }

void LeaderElector::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaderElector::set_leader(bool v) {
  if (leader_.exchange(v) == v) return;
  ++transitions_;
  if (v) log_info("kube: became the leader (lease {}/{}, identity {})", opts_.namespace_, opts_.name, opts_.identity);
  else log_warn("kube: no longer the leader (lease {}/{})", opts_.namespace_, opts_.name);
  if (on_change_) on_change_(v);
}

bool LeaderElector::is_leader() const { return leader_.load() && steady_ms() < leader_until_ms_.load(); }

bool LeaderElector::try_acquire_or_renew(KubeSession& s, int timeout_ms) {
  std::string path = fmt::format("/apis/coordination.k8s.io/v1/namespaces/{}/leases/{}", opts_.namespace_, opts_.name);
  HttpResult r = s.request("GET", path, {}, "application/json", timeout_ms);
  std::string now = micro_time(now_unix_us());
  int64_t duration_s = std::max<int64_t>(1, opts_.lease_duration_ms / 1000);
  if (r.status == 404) {
    nlohmann::json lease = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", opts_.name}, {"namespace", opts_.namespace_}}},
        {"spec",
         {{"holderIdentity", opts_.identity},
          {"leaseDurationSeconds", duration_s},
          {"acquireTime", now},
          {"renewTime", now},
          {"leaseTransitions", 0}}}};
    HttpResult c = s.request("POST", fmt::format("/apis/coordination.k8s.io/v1/namespaces/{}/leases", opts_.namespace_),
                             lease.dump(), "application/json", timeout_ms);
    return c.ok();
  }
  if (!r.ok()) {
    log_debug("kube: lease {}: HTTP {} {}", opts_.name, r.status, r.error);
    return false;
  }
  auto lease = nlohmann::json::parse(r.body, nullptr, false);
  if (!lease.is_object()) return false;
  nlohmann::json spec = lease.contains("spec") && lease["spec"].is_object() ? lease["spec"] : nlohmann::json::object();
  LeaseView v;
  v.holder = json_str(spec, "holderIdentity");
  v.renew_time = json_str(spec, "renewTime");
  if (spec.contains("leaseDurationSeconds") && spec["leaseDurationSeconds"].is_number_integer())
    v.lease_duration_s = spec["leaseDurationSeconds"].get<int64_t>();
  int64_t transitions = spec.contains("leaseTransitions") && spec["leaseTransitions"].is_number_integer()
                            ? spec["leaseTransitions"].get<int64_t>()
                            : 0;
  if (!may_acquire(v, opts_.identity, obs_, steady_ms(), opts_.lease_duration_ms)) {
    held_by_other_ = true;
    return false;
  }
  nlohmann::json next = lease;
  next["spec"]["holderIdentity"] = opts_.identity;
  next["spec"]["leaseDurationSeconds"] = duration_s;
  next["spec"]["renewTime"] = now;
  if (v.holder != opts_.identity) {
    next["spec"]["acquireTime"] = now;
    next["spec"]["leaseTransitions"] = transitions + 1;  // as client-go: every change of holder, a released lease too
  }
  // metadata.resourceVersion stays as read: the PUT fails with 409 if anyone wrote in between.
  HttpResult u = s.request("PUT", path, next.dump(), "application/json", timeout_ms);
  if (u.status == 409) log_debug("kube: lease {}: conflict, another replica wrote it first", opts_.name);
  return u.ok();
}

void LeaderElector::release(KubeSession& s) {
  std::string path = fmt::format("/apis/coordination.k8s.io/v1/namespaces/{}/leases/{}", opts_.namespace_, opts_.name);
  HttpResult r = s.request("GET", path, {}, "application/json", 3000);
  if (!r.ok()) return;
  auto lease = nlohmann::json::parse(r.body, nullptr, false);
  if (!lease.is_object() || !lease.contains("spec") || json_str(lease["spec"], "holderIdentity") != opts_.identity) return;
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = micro_time(now_unix_us());
  if (s.request("PUT", path, lease.dump(), "application/json", 3000).ok()) log_info("kube: released the lease {}", opts_.name);
}

void LeaderElector::run() {
  KubeSession s(client_);
  s.set_stop_flag(&stop_);
  while (!stop_) {
    held_by_other_ = false;
    bool ok = false;
    // The time is taken before the requests (as client-go does), and each
    // request may take only what is left of the renew deadline.
    const int64_t attempt_start = steady_ms();
    int64_t budget = opts_.retry_period_ms;
    if (leader_) budget = std::min<int64_t>(budget, opts_.renew_deadline_ms - (attempt_start - last_renew_ms_));
    const int timeout_ms = static_cast<int>(std::max<int64_t>(1000, budget));
    try {
      ok = try_acquire_or_renew(s, timeout_ms);
    } catch (const std::exception& e) {  // a Lease we cannot read: as if the request had failed
      log_warn("kube: lease {}: {}", opts_.name, e.what());
    }
    int64_t now = steady_ms();
    if (ok) {
      last_renew_ms_ = attempt_start;
      leader_until_ms_ = attempt_start + opts_.renew_deadline_ms;
      set_leader(true);
    } else if (leader_ && (held_by_other_ || now - last_renew_ms_ > opts_.renew_deadline_ms)) {
      set_leader(false);  // could not renew in time: someone else may take it
    } else if (leader_) {
      // keep trying until the renew deadline
    } else {
      set_leader(false);
    }
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_for(lk, std::chrono::milliseconds(opts_.retry_period_ms), [this] { return stop_.load(); });
  }
  if (leader_) {
    s.set_stop_flag(nullptr);  // the release itself must go through (3 s at most)
    try {
      release(s);
    } catch (const std::exception&) {
    }
    set_leader(false);
  }
}

}  // namespace ingressd::kube
